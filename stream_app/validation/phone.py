"""Normalisation of phone numbers to E.164 with the phonenumbers library.

Genesys Cloud recommends E.164 for contact-list phone columns and ignores formatting
characters except a leading plus sign, so every accepted number is sent as E.164 (``+`` and
digits). A number without a country code is read in the contact list's default region.

Letters are rejected before parsing, because phonenumbers converts them to keypad digits
("+1 800 FLOWERS" becomes +18003569377) and ignores trailing letters ("334-793-8701xx" parses
as a valid number). That also rejects extensions ("x12", "ext. 12"), which a dialer cannot use
from a phone column. The check is ``is_valid_number``, which checks the number against the
numbering plan. The weaker ``is_possible_number`` checks length only.
"""

from __future__ import annotations

from functools import cache, lru_cache

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, ValidationResult

from schemas.reason import Rule
from stream_app.validation.problems import ValueProblem

# Formatting characters that people and CRMs put into phone numbers. Everything else that is
# not a digit or a letter is rejected, so "334#793#8701" does not pass as a number.
_FORMATTING_CHARACTERS = frozenset(" -.()/+\u00a0")

# Feeds repeat numbers (shared switchboards, re-sent contacts), so results are cached. One entry
# is a few hundred bytes, so a full cache takes roughly 10 to 20 MB (an estimate).
_CACHE_SIZE = 65_536

_PARSE_ERROR_MESSAGES = {
    NumberParseException.INVALID_COUNTRY_CODE: "The country code after the + sign is unknown.",
    NumberParseException.NOT_A_NUMBER: "The value is not a phone number.",
    NumberParseException.TOO_SHORT_AFTER_IDD: (
        "The number after the international prefix is too short."
    ),
    NumberParseException.TOO_SHORT_NSN: "The number is too short.",
    NumberParseException.TOO_LONG: "The number is too long.",
}

_POSSIBILITY_MESSAGES = {
    ValidationResult.INVALID_COUNTRY_CODE: "The country code is unknown.",
    ValidationResult.TOO_SHORT: "The number is too short for its country.",
    ValidationResult.TOO_LONG: "The number is too long for its country.",
    ValidationResult.INVALID_LENGTH: "The number has an invalid length for its country.",
}


def check_region(region: str) -> None:
    """Raise ValueError unless `region` is a region code that phonenumbers supports, like US."""
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(
            f"unknown phone region {region!r}; use an ISO 3166-1 alpha-2 code such as US or GB"
        )


@lru_cache(maxsize=_CACHE_SIZE)
def normalize_phone(raw: str, region: str) -> str | ValueProblem:
    """Return `raw` as an E.164 number, or the problem that prevents it.

    `raw` should already be cleaned text (trimmed, NFC) and not empty. A number without a
    leading ``+`` is read in `region`. NANP territories that share country code 1 (Puerto Rico,
    Guam, US Virgin Islands, American Samoa, Northern Mariana Islands) are valid under region
    US.

    Raises:
        ValueError: `region` is not a supported region code. That is a settings error, not
            a bad value.
    """
    check_region(region)

    if any(char.isalpha() for char in raw):
        return _problem(region, Rule.PHONE_LETTERS, "The phone number contains letters.")

    unexpected = sorted({c for c in raw if not c.isdigit() and c not in _FORMATTING_CHARACTERS})
    if unexpected:
        listed = ", ".join(repr(char) for char in unexpected)
        return _problem(region, Rule.PHONE_INVALID, f"The phone number contains {listed}.")

    if "+" in raw[1:]:
        return _problem(region, Rule.PHONE_INVALID, "A + sign may only start the number.")

    try:
        number = phonenumbers.parse(raw, region)
    except NumberParseException as exc:
        message = _PARSE_ERROR_MESSAGES.get(exc.error_type, "The value is not a phone number.")
        return _problem(region, Rule.PHONE_INVALID, message)

    if not phonenumbers.is_valid_number(number):
        possibility = phonenumbers.is_possible_number_with_reason(number)
        message = _POSSIBILITY_MESSAGES.get(
            possibility, "The number is not in use in its country's numbering plan."
        )
        return _problem(region, Rule.PHONE_INVALID, message)

    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def _problem(region: str, rule: Rule, message: str) -> ValueProblem:
    return ValueProblem(rule=rule, message=message, fix=_fix_for_region(region))


@cache
def _fix_for_region(region: str) -> str:
    # The library's example number for the region shows the sender a format that passes.
    example = phonenumbers.example_number(region)
    if example is None:
        return "Use an E.164 number: a + sign, the country code and the national number."
    international = phonenumbers.format_number(example, PhoneNumberFormat.E164)
    national = phonenumbers.format_number(example, PhoneNumberFormat.NATIONAL)
    return (
        f"Use an E.164 number such as {international}, or a national number of region "
        f"{region} such as {national}, with digits and formatting characters only."
    )
