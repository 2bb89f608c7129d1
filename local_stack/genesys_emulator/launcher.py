"""The emulator as a child process, with small synchronous helpers for tests.

GenesysEmulator runs `python -m local_stack.genesys_emulator` through ManagedProcess, passing every
setting as a GENESYS_EMULATOR_* environment variable, so tests and fault runs can stop, kill -9 and
restart it like the real dependency. A restart loses all contact lists, tokens and logs, because
the emulator keeps them in memory. The helpers talk to the /_emulator/ routes over loopback only.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any

import httpx

from local_stack.genesys_emulator.settings import EmulatorSettings
from local_stack.process import LocalStackError, ManagedProcess, choose_port

logger = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[2]


class GenesysEmulator:
    """Start, stop and inspect one emulator process on 127.0.0.1.

    A port of 0 in `settings` picks a free port when the object is created; `settings.port` and
    `base_url` then hold the chosen port.
    """

    def __init__(
        self, settings: EmulatorSettings | None = None, log_dir: Path | None = None
    ) -> None:
        settings = settings or EmulatorSettings()
        self.port = choose_port(settings.port, settings.host)
        self.settings = settings.model_copy(update={"port": self.port})
        log_dir = log_dir or PROJECT_ROOT / "var" / "logs"
        self._process = ManagedProcess(
            "genesys-emulator",
            [sys.executable, "-m", "local_stack.genesys_emulator"],
            log_dir / "genesys-emulator.log",
            env={**os.environ, **self.settings.to_env()},
            cwd=PROJECT_ROOT,
        )

    @property
    def base_url(self) -> str:
        """Return the API address, e.g. http://127.0.0.1:8089; login and uploads use it too."""
        return f"http://{self.settings.host}:{self.port}"

    def start(self, timeout: float = 20.0) -> None:
        """Start the process and wait until its port accepts connections.

        Raises LocalStackError with the log tail when the port does not open within `timeout`.
        """
        self._process.start_listening(self.port, self.base_url, timeout, self.settings.host)

    def stop(self) -> None:
        self._process.stop()

    def kill(self) -> None:
        self._process.kill()

    def is_running(self) -> bool:
        return self._process.is_running()

    def log_tail(self, lines: int = 40) -> str:
        return self._process.log_tail(lines)

    def current_settings(self) -> dict[str, Any]:
        """Return the settings the running emulator uses, secrets masked."""
        return self._admin("GET", "/settings")  # type: ignore[no-any-return]

    def patch_settings(self, **values: Any) -> dict[str, Any]:
        """Change runtime settings; return the previous values of the changed ones.

        Pass the returned dict back to `patch_settings` to restore them.
        """
        before = self.current_settings()
        self._admin("PATCH", "/settings", values)
        return {name: before[name] for name in values}

    def reset(self) -> None:
        """Drop every contact list, upload and log entry; tokens and settings stay."""
        self._admin("POST", "/reset", {})

    def contacts(self, contact_list_id: str) -> list[dict[str, Any]]:
        return self._admin("GET", f"/contactlists/{contact_list_id}/contacts")  # type: ignore[no-any-return]

    def writes(self, contact_list_id: str | None = None, since: int = 0) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"since": since}
        if contact_list_id is not None:
            params["contactListId"] = contact_list_id
        return self._admin("GET", "/writes", params=params)  # type: ignore[no-any-return]

    def requests_log(self, since: int = 0) -> list[dict[str, Any]]:
        return self._admin("GET", "/requests", params={"since": since})  # type: ignore[no-any-return]

    def rate_limit(self) -> dict[str, Any]:
        return self._admin("GET", "/ratelimit")  # type: ignore[no-any-return]

    def _admin(
        self,
        method: str,
        path: str,
        payload: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
    ) -> Any:
        # trust_env=False keeps proxy variables from routing loopback calls elsewhere.
        with httpx.Client(base_url=self.base_url, timeout=10, trust_env=False) as client:
            response = client.request(method, "/_emulator" + path, json=payload, params=params)
        if response.is_error:
            raise LocalStackError(
                f"{method} /_emulator{path} failed with {response.status_code}: {response.text}"
            )
        return response.json()
