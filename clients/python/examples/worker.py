"""A worker over a pull subscription: prints each job, acks it, exits after N.

    python examples/worker.py --url http://127.0.0.1:8080 --subscription 1 --max-messages 10

``--max-messages`` (or env ``WORKER_MAX_MESSAGES``) makes it exit by itself; 0
runs until Ctrl-C. ``HERALD_URL`` and ``HERALD_TOKEN`` are read from the
environment too.
"""

from __future__ import annotations

import argparse
import os
import threading

from herald_client import Herald, Pulled


def main() -> int:
    parser = argparse.ArgumentParser(description="consume a herald pull subscription")
    parser.add_argument("--url", default=os.environ.get("HERALD_URL", "http://127.0.0.1:8080"))
    parser.add_argument("--subscription", type=int, required=True)
    parser.add_argument(
        "--max-messages", type=int, default=int(os.environ.get("WORKER_MAX_MESSAGES", "0"))
    )
    parser.add_argument("--concurrency", type=int, default=2)
    args = parser.parse_args()

    done = threading.Event()
    lock = threading.Lock()
    handled = 0

    def handle(job: Pulled) -> None:
        nonlocal handled
        print(f"job {job['message']['id']} (attempt {job['attempt']}): {job['message']['data']}")
        with lock:
            handled += 1
            if args.max_messages and handled >= args.max_messages:
                done.set()

    with Herald(args.url, token=os.environ.get("HERALD_TOKEN")) as herald:
        worker = herald.consume(args.subscription, handle, concurrency=args.concurrency, wait=5)
        try:
            while not done.wait(0.5):
                if not worker.running:
                    break
        except KeyboardInterrupt:
            pass
        worker.stop()
        worker.join()
    print(f"handled {handled} messages", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
