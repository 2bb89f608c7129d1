from pathlib import Path

import pytest

from schemas.reason import Rule
from stream_app.errors import ConfigurationError, MappingFileError
from stream_app.mapping import load_mapping, map_fields, parse_mapping

EXAMPLE = """
[defaults]
contact_list = "cms-hospitals"   # used when an event names no contact list
phone_region = "US"

[lists.cms-hospitals]
contact_list = "3f1c0d6e-0000-4000-8000-000000000001"
id_column = "provider_id"

[lists.cms-hospitals.columns]
provider_id = "Provider ID"
name = "Hospital Name"
phone = "Phone Number"

[lists.uk-clinics]
id_column = "id"
phone_region = "GB"
"""


def _problems(text: str) -> list[str]:
    with pytest.raises(MappingFileError) as caught:
        parse_mapping(text, source="mapping.toml")
    assert "mapping.toml" in str(caught.value)
    return list(caught.value.problems)


def test_parse_mapping_example() -> None:
    mapping = parse_mapping(EXAMPLE)

    hospitals = mapping.lists["cms-hospitals"]
    assert mapping.default_contact_list == "cms-hospitals"
    assert hospitals.contact_list == "3f1c0d6e-0000-4000-8000-000000000001"
    assert hospitals.id_column == "provider_id"
    assert hospitals.phone_region == "US"
    assert hospitals.columns == {
        "provider_id": "Provider ID",
        "name": "Hospital Name",
        "phone": "Phone Number",
    }


def test_parse_mapping_list_defaults() -> None:
    clinics = parse_mapping(EXAMPLE).lists["uk-clinics"]

    assert clinics.columns is None
    assert clinics.contact_list == "uk-clinics"
    assert clinics.phone_region == "GB"


def test_for_list_by_key_or_genesys_id() -> None:
    mapping = parse_mapping(EXAMPLE)

    by_key = mapping.for_list("cms-hospitals")
    by_id = mapping.for_list("3f1c0d6e-0000-4000-8000-000000000001")

    assert by_key is not None
    assert by_key is by_id
    assert mapping.for_list("unknown") is None


def test_mapping_file_error_is_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        parse_mapping("lists = 1")


# A valid file up to the list's columns table, for cases that break one rule after it.
LIST_A = "[defaults]\nphone_region = 'US'\n[lists.a]\nid_column = 'id'\n"
COLUMNS_A = LIST_A + "[lists.a.columns]\n"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[lists.a\nid_column = 'id'", "invalid TOML"),
        ("", "lists: required key is missing"),
        ("[lists]", "at least one [lists.<name>] table"),
        (LIST_A.replace("id_column", "id_colum"), "lists.a.id_colum: unknown key"),
        (LIST_A.replace("id_column = 'id'", "region = 'US'"), "lists.a.id_column: required"),
        (LIST_A.replace("'id'", "5"), "lists.a.id_column: Input should be a valid string"),
        (LIST_A.replace("[lists.a]", "colour = 'red'\n[lists.a]"), "defaults.colour: unknown key"),
        (
            "[lists.a]\nid_column = 'id'",
            "lists.a.phone_region: missing, and [defaults] sets no phone_region",
        ),
        (
            "[lists.a]\nid_column = 'id'\nphone_region = 'USA'",
            "lists.a.phone_region: unknown region 'USA'",
        ),
        (LIST_A.replace("'US'", "'us'"), "defaults.phone_region: unknown region 'us'"),
        (
            LIST_A.replace("[defaults]", "[defaults]\ncontact_list = 'b'"),
            "defaults.contact_list: 'b' is not a key of [lists] (known: a)",
        ),
        (COLUMNS_A, "lists.a.columns: the table is empty"),
        (
            COLUMNS_A + "name = 'Name'",
            "lists.a.id_column: 'id' is not a key of [lists.a.columns]",
        ),
        (
            COLUMNS_A + "id = 'ID'\nphone = 7",
            "lists.a.columns.phone: Input should be a valid string",
        ),
        (
            COLUMNS_A + "id = 'ID'\nphone = ' '",
            "lists.a.columns.phone: the source field name is empty",
        ),
        (
            COLUMNS_A + "id = 'ID'\nID = 'Other'",
            "lists.a.columns.ID: The column name repeats 'id'",
        ),
        (
            COLUMNS_A + f"id = 'ID'\n{'x' * 129} = 'X'",
            f"lists.a.columns.{'x' * 129}: The column name is 129 characters long",
        ),
    ],
)
def test_parse_mapping_rejects(text: str, problem: str) -> None:
    problems = _problems(text)

    assert any(problem in line for line in problems), problems


def test_parse_mapping_too_many_columns() -> None:
    columns = "\n".join(f"c{i} = 'Field {i}'" for i in range(51))
    text = COLUMNS_A.replace("'id'", "'c0'") + columns

    problems = _problems(text)

    assert problems == [
        "lists.a.columns: There are 51 columns, but a Genesys Cloud contact list has at most 50."
    ]


def test_parse_mapping_lists_every_problem() -> None:
    text = "[lists.a]\nid_column = 'id'\n[lists.b]\nid_column = 'id'\nphone_region = 'XX'"

    problems = _problems(text)

    assert len(problems) == 2
    assert problems[0].startswith("lists.a.phone_region")
    assert problems[1].startswith("lists.b.phone_region")


def test_load_mapping_reads_file(tmp_path: Path) -> None:
    path = tmp_path / "mapping.toml"
    path.write_text(EXAMPLE, encoding="utf-8")

    mapping = load_mapping(path)

    assert set(mapping.lists) == {"cms-hospitals", "uk-clinics"}


def test_load_mapping_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"

    with pytest.raises(MappingFileError, match="cannot read the file") as caught:
        load_mapping(path)

    assert caught.value.path == str(path)


def test_load_mapping_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "mapping.toml"
    path.write_bytes(b"[lists.caf\xe9]\nid_column = 'id'\n")

    with pytest.raises(MappingFileError, match="not UTF-8"):
        load_mapping(path)


def test_map_fields_renames_and_ignores_unused() -> None:
    hospitals = parse_mapping(EXAMPLE).lists["cms-hospitals"]
    source = {
        "Provider ID": "010001",
        "Hospital Name": "Southeast Alabama Medical Center",
        "Phone Number": None,
        "County Name": "Houston",
    }

    mapped, problems = map_fields(source, hospitals)

    assert mapped == {
        "provider_id": "010001",
        "name": "Southeast Alabama Medical Center",
        "phone": None,
    }
    assert problems == []


def test_map_fields_missing_source_field() -> None:
    hospitals = parse_mapping(EXAMPLE).lists["cms-hospitals"]

    mapped, problems = map_fields({"Provider ID": "010001", "Hospital Name": "A"}, hospitals)

    assert "phone" not in mapped
    assert [(reason.rule, reason.field) for reason in problems] == [
        (Rule.FIELD_MISSING, "Phone Number")
    ]
    assert "'phone'" in problems[0].message
    assert "'cms-hospitals'" in problems[0].message


def test_map_fields_matches_names_exactly() -> None:
    hospitals = parse_mapping(EXAMPLE).lists["cms-hospitals"]
    source = {"provider id": "1", "Hospital Name": "A", "Phone Number": "1"}

    _, problems = map_fields(source, hospitals)

    assert [reason.field for reason in problems] == ["Provider ID"]


def test_map_fields_identity() -> None:
    clinics = parse_mapping(EXAMPLE).lists["uk-clinics"]
    source = {"id": "7", "phone": "020 7946 0958", "notes": None}

    mapped, problems = map_fields(source, clinics)

    assert mapped == source
    assert mapped is not source
    assert problems == []
