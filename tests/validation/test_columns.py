import pytest

from schemas.reason import Rule
from stream_app.validation.columns import MAX_COLUMN_NAME_LENGTH, MAX_COLUMNS, check_column_names


def test_check_column_names_accepts_usual_names() -> None:
    names = ["provider_id", "Hospital Name", "phone-1", "x" * MAX_COLUMN_NAME_LENGTH]

    assert check_column_names(names) == []


def test_check_column_names_accepts_max_count() -> None:
    assert check_column_names([f"c{i}" for i in range(MAX_COLUMNS)]) == []


@pytest.mark.parametrize(
    ("names", "rule", "field"),
    [
        ([f"c{i}" for i in range(MAX_COLUMNS + 1)], Rule.COLUMNS_TOO_MANY, None),
        (["x" * (MAX_COLUMN_NAME_LENGTH + 1)], Rule.COLUMN_NAME_TOO_LONG, "x" * 129),
        (["phone", "Phone"], Rule.COLUMN_DUPLICATE, "Phone"),
        ([""], Rule.COLUMN_NAME_INVALID, ""),
        ([" phone"], Rule.COLUMN_NAME_INVALID, " phone"),
        (["phone "], Rule.COLUMN_NAME_INVALID, "phone "),
        (["a\\b"], Rule.COLUMN_NAME_INVALID, "a\\b"),
        (["a\tb"], Rule.COLUMN_NAME_INVALID, "a\tb"),
        (["\ufeffid"], Rule.COLUMN_NAME_INVALID, "\ufeffid"),
    ],
)
def test_check_column_names_rejects(names: list[str], rule: Rule, field: str | None) -> None:
    reasons = check_column_names(names)

    assert [(reason.rule, reason.field) for reason in reasons] == [(rule, field)]


def test_check_column_names_too_long_states_length() -> None:
    [reason] = check_column_names(["x" * 200])

    assert "200 characters" in reason.message
    assert "128" in reason.message
