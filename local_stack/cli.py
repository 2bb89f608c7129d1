"""`local-stack up`: run the local stack in the foreground until Ctrl-C."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from pathlib import Path

from local_stack.process import LocalStackError
from local_stack.stack import PROJECT_ROOT, LocalStack, StackPorts

logger = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="local-stack",
        description="Run Kafka, S3, the Genesys Cloud emulator and the CRM receiver on 127.0.0.1.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start the stack in the foreground; Ctrl-C stops it")
    up.add_argument(
        "--work-dir",
        type=Path,
        default=PROJECT_ROOT / ".cache" / "local-stack",
        help="folder for broker data and service logs (default: .cache/local-stack)",
    )
    up.add_argument(
        "--kafka-version", default=None, help="Apache Kafka version, e.g. 3.9.1 or 4.1.1"
    )
    up.add_argument(
        "--any-free-port",
        action="store_true",
        help="use free ports instead of the defaults (Kafka 9092, S3 9000, Genesys 8089, CRM 8090)",
    )
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    stack = LocalStack(
        work_dir=args.work_dir,
        ports=StackPorts.any_free() if args.any_free_port else StackPorts(),
        kafka_version=args.kafka_version,
    )
    stopping = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())

    try:
        stack.start()
    except LocalStackError as exc:
        logger.error("Local stack failed to start: %s", exc)
        return 1

    print("Local stack is up:")
    for name, address in stack.addresses().items():
        print(f"  {name:12} {address}")
    print("\nPoint a worker at it with:")
    for name, value in stack.env().items():
        print(f"  export {name}={value}")
    print("\nPress Ctrl-C to stop.", flush=True)

    stopping.wait()
    print("Stopping the local stack...", flush=True)
    stack.stop()
    return 0
