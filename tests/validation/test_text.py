import pytest

from schemas.reason import Rule
from stream_app.validation.text import MAX_VALUE_LENGTH, NewlinePolicy, clean_text


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Dothan", "Dothan"),
        ("  Dothan \u00a0", "Dothan"),
        ("Cafe\u0301", "Caf\u00e9"),
        ("O\u2019Brien", "O\u2019Brien"),
        ("a\tb", "a b"),
        ("a\x00b\x07c\x1bd", "abcd"),
        ("a\x7fb", "ab"),
        ("\ufeffName", "Name"),
        ("", ""),
        ("   ", ""),
        ("x" * MAX_VALUE_LENGTH, "x" * MAX_VALUE_LENGTH),
        (" " + "x" * MAX_VALUE_LENGTH + " ", "x" * MAX_VALUE_LENGTH),
        # 300 decomposed characters (600 code points) compose to 300 under NFC.
        ("e\u0301" * 300, "\u00e9" * 300),
    ],
)
def test_clean_text_accepts(raw: str, expected: str) -> None:
    cleaned = clean_text(raw, newline_policy="reject")

    assert cleaned.problems == ()
    assert cleaned.value == expected


@pytest.mark.parametrize("raw", ["a\nb", "a\r\nb", "a\rb", "a\u2028b", "a\u2029b", "trailing\n"])
def test_clean_text_newline_rejected(raw: str) -> None:
    cleaned = clean_text(raw, newline_policy="reject")

    assert [problem.rule for problem in cleaned.problems] == [Rule.VALUE_NEWLINE]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("a\nb", "a b"),
        ("a\r\nb", "a b"),
        ("a\r\n\r\nb", "a  b"),
        ("a\u2028b", "a b"),
        ("line one\nline two\n", "line one line two"),
    ],
)
def test_clean_text_newline_replaced(raw: str, expected: str) -> None:
    cleaned = clean_text(raw, newline_policy="replace")

    assert cleaned.problems == ()
    assert cleaned.value == expected


@pytest.mark.parametrize("character", ["\x80", "\x85", "\x92", "\x9f"])
def test_clean_text_c1_control_rejected(character: str) -> None:
    cleaned = clean_text(f"O{character}BRIEN", newline_policy="replace")

    assert [problem.rule for problem in cleaned.problems] == [Rule.VALUE_ENCODING]
    assert f"U+{ord(character):04X}" in cleaned.problems[0].message
    assert "Windows-1252" in cleaned.problems[0].fix


def test_clean_text_too_long_names_length() -> None:
    cleaned = clean_text("x" * (MAX_VALUE_LENGTH + 88), newline_policy="reject")

    assert [problem.rule for problem in cleaned.problems] == [Rule.VALUE_TOO_LONG]
    assert "600 characters" in cleaned.problems[0].message
    assert "512" in cleaned.problems[0].message


def test_clean_text_length_after_removal() -> None:
    cleaned = clean_text("x" * MAX_VALUE_LENGTH + "\x00" * 10, newline_policy="reject")

    assert cleaned.problems == ()


@pytest.mark.parametrize("policy", ["reject", "replace"])
def test_clean_text_reports_every_problem(policy: NewlinePolicy) -> None:
    cleaned = clean_text("\x92" + "x" * 600 + "\n", newline_policy=policy)

    rules = [problem.rule for problem in cleaned.problems]
    expected = [Rule.VALUE_ENCODING, Rule.VALUE_TOO_LONG]
    if policy == "reject":
        expected.insert(1, Rule.VALUE_NEWLINE)
    assert rules == expected
