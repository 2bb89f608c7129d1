"""Child processes and loopback ports for the local stack.

Every local service (Kafka broker, S3 server, Genesys emulator, CRM receiver) runs as a child
process so that tests and the fault runs can stop, kill -9 and restart it like a real dependency.
This module binds to 127.0.0.1 only and never touches another host.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

logger = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"


class LocalStackError(RuntimeError):
    """A local service could not be prepared, started or stopped."""


def port_is_free(port: int, host: str = LOOPBACK) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def choose_port(preferred: int | None, host: str = LOOPBACK) -> int:
    """Return `preferred` when it is free on `host`, else a free port chosen by the kernel.

    A preferred port of 0 or None always picks a free port.
    """
    if preferred and port_is_free(preferred, host):
        return preferred

    if preferred:
        logger.warning("Port %d on %s is busy; choosing a free port instead", preferred, host)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
    return port


def wait_for_port(port: int, timeout: float, host: str = LOOPBACK) -> bool:
    """Wait until a TCP connect to host:port succeeds; return False after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return True
        time.sleep(0.1)
    return False


class ManagedProcess:
    """One child process with its output in a log file, a clean stop and a kill -9.

    `start` may be called again after `stop` or `kill`; the log file is appended to, so a
    restarted service keeps one log.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = dict(os.environ if env is None else env)
        self.cwd = cwd
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        if self.is_running():
            return

        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            # A new session keeps Ctrl-C in the parent's terminal from reaching the child
            # before the parent has stopped it in order.
            self._proc = subprocess.Popen(  # noqa: S603 - argv is built by this package
                self.argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
            )
        logger.info("Started %s (pid %d), log %s", self.name, self._proc.pid, self.log_path)

    def start_listening(self, port: int, url: str, timeout: float, host: str = LOOPBACK) -> None:
        """Start the process and wait until `port` accepts connections.

        Kills the process and raises LocalStackError with the log tail when the port does not
        open within `timeout` seconds.
        """
        self.start()
        if not wait_for_port(port, timeout, host):
            self.kill()
            raise LocalStackError(
                f"{self.name} did not listen on {url} within {timeout:.0f} s. "
                f"Log tail:\n{self.log_tail()}"
            )

    def stop(self, timeout: float = 20.0) -> None:
        """Send SIGTERM and wait; send SIGKILL if the process is still alive after `timeout`."""
        if not self.is_running():
            return

        assert self._proc is not None
        self._proc.send_signal(signal.SIGTERM)
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            logger.warning("%s did not stop within %.0f s; sending SIGKILL", self.name, timeout)
            self.kill()
            return
        logger.info("Stopped %s", self.name)

    def kill(self) -> None:
        """Send SIGKILL, as a crash would, and reap the process."""
        if not self.is_running():
            return

        assert self._proc is not None
        self._proc.kill()
        self._proc.wait()
        logger.info("Killed %s with SIGKILL", self.name)

    def exit_code(self) -> int | None:
        return None if self._proc is None else self._proc.poll()

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])
