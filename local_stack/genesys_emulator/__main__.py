"""Run the Genesys Cloud emulator in the foreground: `python -m local_stack.genesys_emulator`.

Settings come from GENESYS_EMULATOR_* environment variables; --host and --port override them.
The first line on stdout is the address, e.g. "Genesys Cloud emulator on http://127.0.0.1:8089",
printed once the port accepts connections, so a port of 0 shows the port the kernel chose.
SIGTERM and SIGINT stop the server cleanly.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from local_stack.genesys_emulator.app import create_app
from local_stack.genesys_emulator.settings import EmulatorSettings

logger = logging.getLogger(__name__)


async def serve(settings: EmulatorSettings) -> None:
    """Serve until SIGTERM or SIGINT arrives."""
    runner = web.AppRunner(create_app(settings), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port)
    await site.start()

    port = settings.port
    if runner.addresses:
        port = runner.addresses[0][1]
    print(f"Genesys Cloud emulator on http://{settings.host}:{port}", flush=True)
    logger.info("Listening on %s:%d with settings %s", settings.host, port, settings.public_view())

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signal_number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signal_number, stop.set)
    try:
        await stop.wait()
    finally:
        logger.info("Stopping")
        await runner.cleanup()
        logger.info("Stopped")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the Genesys Cloud emulator on loopback.")
    parser.add_argument(
        "--host",
        help=(
            "IPv4 address to listen on (default 127.0.0.1). An address that is not loopback, "
            "such as 0.0.0.0 in a container, also needs GENESYS_EMULATOR_ALLOW_NON_LOOPBACK_HOST=true"
        ),
    )
    parser.add_argument("--port", type=int, help="TCP port (default 8089; 0 = any free port)")
    parser.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )

    overrides: dict[str, Any] = {}
    if args.host is not None:
        overrides["host"] = args.host
    if args.port is not None:
        overrides["port"] = args.port
    try:
        settings = EmulatorSettings(**overrides)
    except ValidationError as error:
        parser.error(f"invalid GENESYS_EMULATOR_* settings: {error}")

    asyncio.run(serve(settings))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
