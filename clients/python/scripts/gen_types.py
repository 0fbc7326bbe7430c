#!/usr/bin/env python3
"""Generate ``herald_client/_generated.py`` from ``openapi/openapi.json``.

Stdlib only. ``--check`` exits 1 when the committed file differs from a fresh
generation (CI runs it).
"""

import argparse
import json
import keyword
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SPEC = HERE.parent.parent.parent / "openapi" / "openapi.json"
OUT = HERE.parent / "herald_client" / "_generated.py"

HEADER = '''"""Wire types generated from openapi/openapi.json. Do not edit.

Regenerate with ``python scripts/gen_types.py``.
"""


from typing import Any, Literal, Optional, Union

from typing_extensions import NotRequired, Required, TypedDict

__all__ = [{names}]
'''

SCALARS = {"string": "str", "integer": "int", "number": "float", "boolean": "bool"}


def ref_name(ref: str) -> str:
    """The class name a local ``$ref`` points to."""
    prefix = "#/components/schemas/"
    if not ref.startswith(prefix):
        raise ValueError(f"unsupported $ref {ref!r}")
    return ref[len(prefix) :]


def type_of(schema: dict[str, Any]) -> str:
    """The Python annotation for one schema (without Required wrappers)."""
    if "$ref" in schema:
        return f'"{ref_name(schema["$ref"])}"'
    if "enum" in schema:
        return "Literal[" + ", ".join(json.dumps(v) for v in schema["enum"]) + "]"
    for key in ("oneOf", "anyOf"):
        if key in schema:
            return union([type_of(s) for s in schema[key]])
    if "allOf" in schema:
        parts = [type_of(s) for s in schema["allOf"]]
        return parts[0] if len(parts) == 1 else "dict[str, Any]"
    kind = schema.get("type")
    if kind is None:
        return "Any"
    kinds = kind if isinstance(kind, list) else [kind]
    return union([single(k, schema) for k in kinds])


def single(kind: str, schema: dict[str, Any]) -> str:
    """The annotation for one JSON type name."""
    if kind == "null":
        return "None"
    if kind == "array":
        return f"list[{type_of(schema.get('items', {}))}]"
    if kind == "object":
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            return f"dict[str, {type_of(extra)}]"
        return "dict[str, Any]"
    return SCALARS[kind]


def union(parts: list[str]) -> str:
    """``Optional[...]`` when one side is None, else ``Union[...]``."""
    seen: list[str] = []
    for part in parts:
        if part not in seen:
            seen.append(part)
    rest = [p for p in seen if p != "None"]
    inner = rest[0] if len(rest) == 1 else "Union[" + ", ".join(rest) + "]"
    if not rest:
        return "None"
    return f"Optional[{inner}]" if "None" in seen else inner


def object_parts(schema: dict[str, Any]) -> tuple[list[str], dict[str, Any], set[str]]:
    """Bases, properties and required names of an object schema (allOf merged)."""
    bases: list[str] = []
    props: dict[str, Any] = {}
    required: set[str] = set()
    for part in schema.get("allOf", []):
        if "$ref" in part:
            bases.append(ref_name(part["$ref"]))
        else:
            _, p, r = object_parts(part)
            props.update(p)
            required |= r
    props.update(schema.get("properties", {}))
    required |= set(schema.get("required", []))
    return bases, props, required


def is_object(schema: dict[str, Any]) -> bool:
    """Whether a component becomes a TypedDict."""
    return "properties" in schema or "allOf" in schema


def doc_line(text: str) -> str:
    """The first line of a description, safe inside a docstring."""
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line.replace("\\", "\\\\").replace('"""', "'''")


def emit_class(name: str, schema: dict[str, Any]) -> list[str]:
    """The lines of one TypedDict."""
    bases, props, required = object_parts(schema)
    base = ", ".join(bases) if bases else "TypedDict"
    lines = [f"class {name}({base}, total=False):"]
    if schema.get("description"):
        lines.append(f'    """{doc_line(schema["description"])}"""')
        lines.append("")
    if not props:
        lines.append("    pass")
    for prop in sorted(props):
        if not prop.isidentifier() or keyword.iskeyword(prop):
            raise ValueError(f"{name}.{prop} is not an identifier")
        annotation = type_of(props[prop])
        wrap = "Required" if prop in required else "NotRequired"
        lines.append(f"    {prop}: {wrap}[{annotation}]")
    return lines


def order(schemas: dict[str, Any]) -> list[str]:
    """Names with allOf bases first (classes must exist before subclasses)."""
    done: list[str] = []

    def visit(name: str) -> None:
        if name in done:
            return
        for base in object_parts(schemas[name])[0]:
            visit(base)
        done.append(name)

    for name in sorted(schemas):
        visit(name)
    return done


def generate(spec: dict[str, Any]) -> str:
    """The whole module text."""
    schemas: dict[str, Any] = spec["components"]["schemas"]
    names = order(schemas)
    body: list[str] = []
    for name in names:
        schema = schemas[name]
        body.append("")
        body.append("")
        if is_object(schema):
            body.extend(emit_class(name, schema))
        else:
            body.append(f"{name} = {type_of(schema)}")
    quoted = ", ".join(f'"{n}"' for n in names)
    return HEADER.format(names=quoted) + "\n".join(body) + "\n"


def main() -> int:
    """Write the module, or with ``--check`` compare it."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if out of date")
    parser.add_argument("--spec", type=Path, default=SPEC)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    text = generate(json.loads(args.spec.read_text()))
    if args.check:
        current = args.out.read_text() if args.out.exists() else ""
        if current != text:
            print(f"{args.out} is out of date: run scripts/gen_types.py", file=sys.stderr)
            return 1
        return 0
    args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
