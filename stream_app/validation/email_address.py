"""Syntax check and normalisation of e-mail addresses with the email-validator library.

Only the syntax is checked (``check_deliverability=False``): the service makes no DNS
queries, so validation stays pure and fast. An address that passes may still bounce. The
normalised form of email-validator 2.x lowercases the domain and applies Unicode NFC. The
local part keeps its case, because mail servers may treat it as case-sensitive, except for the
role names of RFC 2142 (info, sales, support, postmaster, ...), which are lowercased.
"""

from __future__ import annotations

from functools import lru_cache

from email_validator import EmailNotValidError, validate_email

from schemas.reason import Rule
from stream_app.validation.problems import ValueProblem

_FIX = "Use one address of the form name@example.com, without spaces, display names or brackets."

_CACHE_SIZE = 65_536


@lru_cache(maxsize=_CACHE_SIZE)
def normalize_email(raw: str) -> str | ValueProblem:
    """Return the normalised form of `raw`, or the problem that prevents it.

    `raw` should already be cleaned text (trimmed, NFC) and not empty. A value containing any
    whitespace is rejected, which also catches two addresses separated by a space. The
    message comes from email-validator. It may quote the invalid characters or the domain, but
    never the whole address.
    """
    if any(char.isspace() for char in raw):
        return ValueProblem(
            rule=Rule.EMAIL_INVALID,
            message="The e-mail address contains a space.",
            fix=_FIX,
        )

    try:
        validated = validate_email(raw, check_deliverability=False)
    except EmailNotValidError as exc:
        return ValueProblem(rule=Rule.EMAIL_INVALID, message=str(exc), fix=_FIX)

    return validated.normalized
