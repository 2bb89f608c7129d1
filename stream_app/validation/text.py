"""Cleaning of one text value for a Genesys Cloud contact-list column.

Genesys Cloud stores every contact-list value as a string and documents a limit of 512
characters per value. The same text also goes into a CSV file, where a line break inside a
quoted value is legal but breaks many other tools. This module cleans a value and reports what
cannot be cleaned. It does not check phone numbers or e-mail addresses.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Literal

from schemas.reason import Rule
from stream_app.validation.problems import ValueProblem

MAX_VALUE_LENGTH = 512

NewlinePolicy = Literal["reject", "replace"]

# CR LF first, so that a Windows line break counts as one break.
_LINE_BREAK = re.compile("\r\n|[\n\r\u2028\u2029]")
# C0 controls other than tab, LF and CR, plus DEL and the byte-order mark. They are invisible,
# carry no meaning in a contact field, and are removed.
_REMOVED_CHARACTERS = re.compile("[\x00-\x08\x0b-\x0c\x0e-\x1f\x7f\ufeff]")
# C1 controls. In real files they nearly always mean that Windows-1252 text was decoded as
# Latin-1 (byte 0x92, an apostrophe, becomes U+0092), so they are reported, not removed.
_C1_CONTROL = re.compile("[\x80-\x9f]")


@dataclass(frozen=True, slots=True)
class CleanedText:
    """The cleaned value and the problems that cleaning could not fix."""

    value: str
    problems: tuple[ValueProblem, ...]


def clean_text(raw: str, *, newline_policy: NewlinePolicy) -> CleanedText:
    """Clean a value for a contact-list column and report what is still wrong.

    The steps, in order:

    1. Normalise to Unicode NFC.
    2. Report C1 control characters (value.encoding).
    3. Reject line breaks (CR, LF, CR LF, U+2028, U+2029) as value.newline, or replace each
       with a space, as set by `newline_policy`.
    4. Replace tabs with spaces, and remove other C0 controls, DEL and U+FEFF.
    5. Trim surrounding whitespace.
    6. Reject values over 512 characters (value.too_long), counting Unicode code points.

    Every problem found is returned, so one value can carry several. `value` is the cleaned
    text even when there are problems, for masking.
    """
    text = unicodedata.normalize("NFC", raw)
    problems: list[ValueProblem] = []

    c1_control = _C1_CONTROL.search(text)
    if c1_control is not None:
        problems.append(_c1_control_problem(c1_control.group()))

    if _LINE_BREAK.search(text) is not None:
        if newline_policy == "reject":
            problems.append(_newline_problem())
        else:
            text = _LINE_BREAK.sub(" ", text)

    text = text.replace("\t", " ")
    text = _REMOVED_CHARACTERS.sub("", text)
    text = text.strip()

    if len(text) > MAX_VALUE_LENGTH:
        problems.append(_too_long_problem(len(text)))

    return CleanedText(value=text, problems=tuple(problems))


def _c1_control_problem(character: str) -> ValueProblem:
    code_point = f"U+{ord(character):04X}"
    return ValueProblem(
        rule=Rule.VALUE_ENCODING,
        message=(
            f"The value contains the control character {code_point}, which usually means "
            "that Windows-1252 text was decoded as Latin-1."
        ),
        fix="Decode the source data as Windows-1252 (cp1252), or remove the character.",
    )


def _newline_problem() -> ValueProblem:
    return ValueProblem(
        rule=Rule.VALUE_NEWLINE,
        message="The value contains a line break.",
        fix="Remove the line break from the value, or set the newline policy to replace.",
    )


def _too_long_problem(length: int) -> ValueProblem:
    return ValueProblem(
        rule=Rule.VALUE_TOO_LONG,
        message=(
            f"The value is {length} characters long, but Genesys Cloud accepts at most "
            f"{MAX_VALUE_LENGTH} characters per value."
        ),
        fix=f"Shorten the value to {MAX_VALUE_LENGTH} characters or fewer.",
    )
