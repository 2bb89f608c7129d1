import pytest

from schemas.reason import Rule
from stream_app.validation.email_address import normalize_email
from stream_app.validation.problems import ValueProblem


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("jane.doe@example.com", "jane.doe@example.com"),
        ("Jane.Doe@EXAMPLE.COM", "Jane.Doe@example.com"),
        ("Info@SAMC.org", "info@samc.org"),
        ("jane+tag@sub.example.co.uk", "jane+tag@sub.example.co.uk"),
        ("jos\u00e9@example.com", "jos\u00e9@example.com"),
        ("jane@b\u00fccher.de", "jane@b\u00fccher.de"),
    ],
)
def test_normalize_email_valid(raw: str, expected: str) -> None:
    assert normalize_email(raw) == expected


@pytest.mark.parametrize(
    ("raw", "message_part"),
    [
        ("jane doe@example.com", "space"),
        ("jane.doe@example.com ", "space"),
        ("Jane Doe <jane@example.com>", "space"),
        ('"jane doe"@example.com', "space"),
        ("jane.doe", "@-sign"),
        ("jane@", "after the @-sign"),
        ("@example.com", "before the @-sign"),
        ("jane@@example.com", "@"),
        ("jane@example", "period"),
        ("jane..doe@example.com", "two periods"),
        ("jane@localhost", "period"),
        ("jane@example.invalid", "special-use"),
        ("jane@example.com,bob@example.com", "invalid characters"),
        ("jane@exa_mple.com", "invalid characters"),
        ("jane@[127.0.0.1]", "bracketed"),
    ],
)
def test_normalize_email_rejects(raw: str, message_part: str) -> None:
    result = normalize_email(raw)

    assert isinstance(result, ValueProblem)
    assert result.rule == Rule.EMAIL_INVALID
    assert message_part in result.message
    assert raw not in result.message
