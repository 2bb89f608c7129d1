"""Write the JSON Schema files for the messages that cross a process boundary.

Run ``python -m schemas.generate`` after changing a model in this package, and commit the files
in ``schemas/json/``. Producers and consumers in other languages validate against those files, and
a test fails while they differ from the models. ``--check`` only compares and exits with status 1
when a file is stale.

Producer-facing messages (what the service reads) use the validation form of the schema, and
consumer-facing messages (what the service writes) use the serialization form. Output is
deterministic: sorted keys, two-space indent, and a trailing newline.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode

from schemas.contact_event import ContactEvent
from schemas.debezium import DebeziumChangeEvent
from schemas.import_result import ImportResult
from schemas.rejected_record import RejectedRecord

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
DEFAULT_OUTPUT_DIR = Path(__file__).parent / "json"
REGENERATE_COMMAND = "python -m schemas.generate"

# File stem -> (model, schema mode).
MESSAGE_SCHEMAS: dict[str, tuple[type[BaseModel], JsonSchemaMode]] = {
    "contact-event": (ContactEvent, "validation"),
    "debezium-change-event": (DebeziumChangeEvent, "validation"),
    "rejected-record": (RejectedRecord, "serialization"),
    "import-result": (ImportResult, "serialization"),
}


def render_schemas() -> dict[str, str]:
    """Render every message schema; return file name -> file text."""
    rendered: dict[str, str] = {}
    for stem, (model, mode) in MESSAGE_SCHEMAS.items():
        schema: dict[str, Any] = {"$schema": JSON_SCHEMA_DIALECT}
        schema.update(model.model_json_schema(mode=mode))
        text = json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        rendered[f"{stem}.schema.json"] = text
    return rendered


def find_stale_files(output_dir: Path = DEFAULT_OUTPUT_DIR) -> list[str]:
    """Return the names of schema files that are missing or differ from the models."""
    stale: list[str] = []
    for name, text in render_schemas().items():
        path = output_dir / name
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            stale.append(name)
    return stale


def write_schemas(output_dir: Path = DEFAULT_OUTPUT_DIR) -> list[Path]:
    """Write every schema file into `output_dir`, creating it; return the paths written.

    Raises:
        OSError: the directory or a file cannot be written.
    """
    output_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name, text in render_schemas().items():
        path = output_dir / name
        path.write_text(text, encoding="utf-8", newline="\n")
        written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m schemas.generate", description=__doc__)
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=DEFAULT_OUTPUT_DIR,
        help="directory for the .schema.json files (default: the package's json/ folder)",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit with status 1 if a file is missing or stale",
    )
    args = parser.parse_args(argv)

    if args.check:
        stale = find_stale_files(args.output_dir)
        for name in stale:
            print(f"stale: {args.output_dir / name}; run {REGENERATE_COMMAND}", file=sys.stderr)
        return 1 if stale else 0

    for path in write_schemas(args.output_dir):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
