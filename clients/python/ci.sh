#!/usr/bin/env bash
# The Python client's CI: venv, install, generated types, lint, types, tests.
set -euo pipefail
cd "$(dirname "$0")"
start=$(date +%s)
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/pip install -q -e '.[dev]'
.venv/bin/python scripts/gen_types.py --check
.venv/bin/ruff check herald_client scripts tests bench examples
.venv/bin/ruff format --check herald_client scripts tests bench examples
.venv/bin/mypy --strict herald_client
.venv/bin/pytest -q "$@"
echo "ci.sh: $(( $(date +%s) - start )) s"
