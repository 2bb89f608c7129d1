"""Settings for tests that build a `StreamWorker` without running it."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from local_stack.stack import PROJECT_ROOT
from stream_app.settings import Settings

MAPPING_FILE = PROJECT_ROOT / "stream_app" / "demo_data" / "cms-hospitals.mapping.toml"


def worker_settings(environ: Mapping[str, str], tmp_path: Path, name: str) -> Settings:
    """Return settings with `environ` and an app id, topics and data folder of their own."""
    return Settings.from_environ(
        {
            **environ,
            "STREAM_APP_APP_ID": name,
            "STREAM_APP_TOPICS__CONTACT_EVENTS": f"{name}-events",
            "STREAM_APP_TOPICS__IMPORT_RESULTS": f"{name}-results",
            "STREAM_APP_DATA_DIR": str(tmp_path / "data"),
            "STREAM_APP_MAPPING_FILE": str(MAPPING_FILE),
        }
    )
