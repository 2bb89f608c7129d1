"""Masking of contact values before they reach logs, spans or dead-letter reasons.

Phone numbers and e-mail addresses are personal data. Every value that the service writes
outside the contact data itself (a log line, a span attribute, `Reason.value_masked`) must go
through this module first. A masked value keeps just enough to recognise a record when talking
to its owner. For a phone number, that is the country code and at most the last two digits.
For an e-mail address, it is the first character of each part, and for text, the first
character and the length.

This module does not decide what to mask. Callers choose the kind from the column type.
"""

from __future__ import annotations

from typing import Literal

import phonenumbers

ValueKind = Literal["phone", "email", "text"]

MASK = "***"


def mask_phone(value: str) -> str:
    """Mask a phone number, keeping the country code and at most the last two digits.

    An E.164 number such as ``+13347938701`` becomes ``+1********01``. The number of revealed
    digits is a quarter of the national number's length, capped at two, so short numbers reveal
    less. A value that is not a parseable international number (the invalid values in
    dead-letter reasons) keeps its punctuation, while letters and all digits but the last two
    become ``*``. No digit is revealed when the value has fewer than eight digits.
    """
    international = _mask_international(value)
    if international is not None:
        return international
    return _mask_unparsed_phone(value)


def mask_email(value: str) -> str:
    """Mask an e-mail address: ``jane.doe@example.com`` becomes ``j***@e***.com``.

    Each of the local part and the domain keeps its first character only when it is at least
    two characters long, and the domain keeps its top-level label. A value without ``@`` is
    masked as text.
    """
    local_part, at_sign, domain = value.rpartition("@")
    if not at_sign:
        return mask_text(value)

    masked_local = _mask_keep_first(local_part)
    host, dot, top_level = domain.rpartition(".")
    if not dot:
        return f"{masked_local}@{_mask_keep_first(domain)}"
    return f"{masked_local}@{_mask_keep_first(host)}.{top_level}"


def mask_text(value: str) -> str:
    """Mask text as its first character and its length: ``Hospital`` becomes ``H***(8)``.

    A value of one character reveals nothing but its length.
    """
    if len(value) <= 1:
        return f"{MASK}({len(value)})"
    return f"{value[0]}{MASK}({len(value)})"


def mask_value(value: str, kind: ValueKind) -> str:
    """Mask `value` with the rule for its kind: phone, email or text.

    Raises:
        ValueError: `kind` is not one of the three kinds.
    """
    if kind == "phone":
        return mask_phone(value)
    if kind == "email":
        return mask_email(value)
    if kind == "text":
        return mask_text(value)
    raise ValueError(f"unknown value kind {kind!r}; expected phone, email or text")


def _mask_keep_first(part: str) -> str:
    if len(part) < 2:
        return MASK
    return f"{part[0]}{MASK}"


def _revealed_digit_count(digit_count: int) -> int:
    return min(2, digit_count // 4)


def _mask_international(value: str) -> str | None:
    if not value.startswith("+"):
        return None
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        return None

    national = phonenumbers.national_significant_number(number)
    # Leading zeros of an Italian-style national number are part of `national`, so the
    # digit count below is the real one.
    revealed = _revealed_digit_count(len(national))
    hidden = "*" * (len(national) - revealed)
    tail = national[len(national) - revealed :]
    return f"+{number.country_code}{hidden}{tail}"


def _mask_unparsed_phone(value: str) -> str:
    digit_count = sum(1 for char in value if char.isdigit())
    revealed = _revealed_digit_count(digit_count) if digit_count >= 8 else 0
    digits_to_hide = digit_count - revealed

    masked: list[str] = []
    for char in value:
        if char.isdigit():
            if digits_to_hide > 0:
                masked.append("*")
                digits_to_hide -= 1
            else:
                masked.append(char)
        elif char.isalnum():
            masked.append("*")
        else:
            masked.append(char)
    return "".join(masked)
