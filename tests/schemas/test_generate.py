import json
from pathlib import Path

import pytest

from schemas import generate


def test_committed_schema_files_current() -> None:
    stale = generate.find_stale_files()

    assert not stale, (
        f"JSON Schema files are out of date: {stale}. "
        f"Regenerate them with: {generate.REGENERATE_COMMAND}"
    )


def test_generation_deterministic() -> None:
    first = generate.render_schemas()
    second = generate.render_schemas()

    assert first == second
    for text in first.values():
        assert text.endswith("}\n")


def test_write_then_check_passes(tmp_path: Path) -> None:
    written = generate.write_schemas(tmp_path)

    assert sorted(path.name for path in written) == [
        "contact-event.schema.json",
        "debezium-change-event.schema.json",
        "import-result.schema.json",
        "rejected-record.schema.json",
    ]
    assert generate.main(["--check", "--output-dir", str(tmp_path)]) == 0


def test_check_reports_stale_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    generate.write_schemas(tmp_path)
    (tmp_path / "import-result.schema.json").write_text("{}\n", encoding="utf-8")

    assert generate.main(["--check", "--output-dir", str(tmp_path)]) == 1
    assert generate.REGENERATE_COMMAND in capsys.readouterr().err


def test_contact_event_schema_forbids_unknown_keys() -> None:
    schema = json.loads(generate.render_schemas()["contact-event.schema.json"])

    assert schema["additionalProperties"] is False
    assert schema["$schema"] == generate.JSON_SCHEMA_DIALECT
    assert schema["properties"]["fields"]["additionalProperties"] == {
        "anyOf": [{"type": "string"}, {"type": "null"}]
    }
