"""A problem found in one value, before it is tied to a column.

The checkers for text, phone numbers and e-mail addresses return `ValueProblem` instead of
raising, so that `functools.lru_cache` can cache rejections too, and so that `validate_contact`
can collect every problem of a contact. `validate_contact` turns each one into a
`schemas.reason.Reason` by adding the column and the masked value.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas.reason import Reason, Rule


@dataclass(frozen=True, slots=True)
class ValueProblem:
    """Why a value is invalid: the rule, a message about the value and a fix for the sender."""

    rule: Rule
    message: str
    fix: str

    def to_reason(self, field: str, value_masked: str | None) -> Reason:
        """Attach the column and the masked value, giving the reason model."""
        return Reason(
            field=field,
            value_masked=value_masked,
            rule=self.rule,
            message=self.message,
            fix=self.fix,
        )
