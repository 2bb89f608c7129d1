import phonenumbers
import pytest

from schemas.reason import Rule
from stream_app.validation.phone import normalize_phone
from stream_app.validation.problems import ValueProblem


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("3347938701", "US", "+13347938701"),
        ("(334) 793-8701", "US", "+13347938701"),
        ("334.793.8701", "US", "+13347938701"),
        ("334/793-8701", "US", "+13347938701"),
        ("1-334-793-8701", "US", "+13347938701"),
        ("+1 334 793 8701", "US", "+13347938701"),
        ("334\u00a0793\u00a08701", "US", "+13347938701"),
        ("\uff13\uff13\uff14\uff17\uff19\uff13\uff18\uff17\uff10\uff11", "US", "+13347938701"),
        # NANP territories share +1 and validate under region US.
        ("7877221234", "US", "+17877221234"),
        ("6714771234", "US", "+16714771234"),
        ("3407731234", "US", "+13407731234"),
        ("6846331234", "US", "+16846331234"),
        ("6702341234", "US", "+16702341234"),
        ("020 7946 0958", "GB", "+442079460958"),
        ("+44 20 7946 0958", "US", "+442079460958"),
        ("011 44 20 7946 0958", "US", "+442079460958"),
        ("+1 (334) 793-8701", "DE", "+13347938701"),
    ],
)
def test_normalize_phone_valid(raw: str, region: str, expected: str) -> None:
    assert normalize_phone(raw, region) == expected


@pytest.mark.parametrize(
    ("raw", "rule", "message_part"),
    [
        ("+1 800 FLOWERS", Rule.PHONE_LETTERS, "letters"),
        ("3347938701 ext", Rule.PHONE_LETTERS, "letters"),
        ("334-793-8701xx", Rule.PHONE_LETTERS, "letters"),
        ("334-793-8701 x12", Rule.PHONE_LETTERS, "letters"),
        ("334-793-8701;ext=12", Rule.PHONE_LETTERS, "letters"),
        ("334#793#8701", Rule.PHONE_INVALID, "'#'"),
        ("334-793-8701*", Rule.PHONE_INVALID, "'*'"),
        ("33+47938701", Rule.PHONE_INVALID, "+ sign"),
        ("12", Rule.PHONE_INVALID, "too short"),
        ("+", Rule.PHONE_INVALID, "not a phone number"),
        ("0000000000", Rule.PHONE_INVALID, "numbering plan"),
        ("9100000000", Rule.PHONE_INVALID, "numbering plan"),
        ("0936933841", Rule.PHONE_INVALID, "numbering plan"),
        ("33479387", Rule.PHONE_INVALID, "too short"),
        ("1234567890123456789", Rule.PHONE_INVALID, "too long"),
        ("+999 1234567", Rule.PHONE_INVALID, "country code"),
    ],
)
def test_normalize_phone_rejects(raw: str, rule: Rule, message_part: str) -> None:
    result = normalize_phone(raw, "US")

    assert isinstance(result, ValueProblem)
    assert result.rule == rule
    assert message_part in result.message


def test_normalize_phone_fix_shows_region_example() -> None:
    result = normalize_phone("12", "US")

    assert isinstance(result, ValueProblem)
    assert "+12015550123" in result.fix
    assert "region US" in result.fix


def test_normalize_phone_message_never_quotes_number() -> None:
    result = normalize_phone("0936933841", "US")

    assert isinstance(result, ValueProblem)
    assert "0936933841" not in result.message
    assert "0936933841" not in result.fix


def test_normalize_phone_caches_repeats() -> None:
    normalize_phone("205-555-0100", "US")
    before = normalize_phone.cache_info().hits

    normalize_phone("205-555-0100", "US")

    assert normalize_phone.cache_info().hits == before + 1


def test_normalize_phone_unknown_region() -> None:
    with pytest.raises(ValueError, match="unknown phone region 'XX'"):
        normalize_phone("3347938701", "XX")


_REGIONS_WITH_EXAMPLES = sorted(
    region for region in phonenumbers.SUPPORTED_REGIONS if phonenumbers.example_number(region)
)


@pytest.mark.parametrize("region", _REGIONS_WITH_EXAMPLES)
def test_normalize_phone_accepts_library_examples(region: str) -> None:
    example = phonenumbers.example_number(region)
    assert example is not None
    national = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.NATIONAL)
    international = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)

    assert normalize_phone(international, "US") == international
    assert normalize_phone(national, region) == international
