import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream_app.masking import mask_email, mask_phone, mask_text, mask_value


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("+13347938701", "+1********01"),
        ("+442079460958", "+44********58"),
        ("+4930123456", "+49******56"),
        ("+390612345678", "+39********78"),
        ("+6834002", "+683***2"),
        ("+1 334 793 8701", "+1********01"),
        ("3347938701", "********01"),
        ("(334) 793-8701", "(***) ***-**01"),
        ("334-793-8701xx", "***-***-**01**"),
        ("+1 800 FLOWERS", "+1********77"),
        ("1-800-FLOWERS", "*-***-*******"),
        ("12", "**"),
        ("", ""),
    ],
)
def test_mask_phone(value: str, expected: str) -> None:
    assert mask_phone(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("jane.doe@example.com", "j***@e***.com"),
        ("jane.doe@mail.example.co.uk", "j***@m***.uk"),
        ("j@x.com", "***@***.com"),
        ("jane@localhost", "j***@l***"),
        ("@example.com", "***@e***.com"),
        ("jane@", "j***@***"),
        ("not an address", "n***(14)"),
    ],
)
def test_mask_email(value: str, expected: str) -> None:
    assert mask_email(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [("Southeast Alabama", "S***(17)"), ("x", "***(1)"), ("", "***(0)")],
)
def test_mask_text(value: str, expected: str) -> None:
    assert mask_text(value) == expected


def test_mask_value_dispatches_by_kind() -> None:
    assert mask_value("+13347938701", "phone") == "+1********01"
    assert mask_value("jane.doe@example.com", "email") == "j***@e***.com"
    assert mask_value("Dothan", "text") == "D***(6)"


def test_mask_value_unknown_kind() -> None:
    with pytest.raises(ValueError, match="unknown value kind"):
        mask_value("x", "ssn")  # type: ignore[arg-type]


_REGIONS_WITH_EXAMPLES = sorted(
    region for region in phonenumbers.SUPPORTED_REGIONS if phonenumbers.example_number(region)
)


@st.composite
def e164_numbers(draw: st.DrawFn) -> str:
    """Valid-length E.164 numbers: a region's example number with random national digits."""
    region = draw(st.sampled_from(_REGIONS_WITH_EXAMPLES))
    example = phonenumbers.example_number(region)
    assert example is not None
    national = phonenumbers.national_significant_number(example)
    digits = draw(st.text(alphabet="0123456789", min_size=len(national), max_size=len(national)))
    return f"+{example.country_code}{digits}"


@settings(deadline=None, max_examples=300)
@given(number=e164_numbers())
def test_mask_phone_hides_national_number(number: str) -> None:
    masked = mask_phone(number)
    parsed = phonenumbers.parse(number, None)
    national = phonenumbers.national_significant_number(parsed)

    assert national not in masked
    assert masked.startswith(f"+{parsed.country_code}")
    assert sum(char.isdigit() for char in masked) <= len(str(parsed.country_code)) + 2


@settings(deadline=None)
@given(value=st.text(alphabet="0123456789 -()+.xX#", min_size=4, max_size=30))
def test_mask_phone_hides_digit_sequence(value: str) -> None:
    masked = mask_phone(value)
    digits = "".join(char for char in value if char.isdigit())

    if len(digits) >= 4:
        assert digits not in masked
    revealed = sum(char.isdigit() for char in masked)
    # A parseable international number also keeps its country code (at most 3 digits).
    assert revealed <= 5


@given(
    local=st.text(st.characters(categories=["L", "N", "P"], exclude_characters="@"), max_size=20),
    host=st.text(st.characters(categories=["L", "N"]), min_size=1, max_size=20),
)
def test_mask_email_keeps_first_characters_only(local: str, host: str) -> None:
    address = f"{local}@{host}.com"

    masked_local, _, masked_domain = mask_email(address).partition("@")

    assert masked_local == (f"{local[0]}***" if len(local) >= 2 else "***")
    assert masked_domain == (f"{host[0]}***.com" if len(host) >= 2 else "***.com")
    assert mask_email(address) != address
