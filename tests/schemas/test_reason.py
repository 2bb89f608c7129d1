import pytest
from pydantic import ValidationError

from schemas.reason import Reason, Rule


@pytest.mark.parametrize("rule", list(Rule))
def test_every_rule_code_passes_reason_pattern(rule: Rule) -> None:
    reason = Reason(field=None, rule=rule, message="m", fix="f")

    assert reason.rule == rule.value


def test_rule_codes_unique() -> None:
    values = [rule.value for rule in Rule]

    assert len(values) == len(set(values))


@pytest.mark.parametrize("rule", ["phone", "Phone.Invalid", "phone.", ".invalid", "phone invalid"])
def test_reason_rejects_malformed_rule(rule: str) -> None:
    with pytest.raises(ValidationError):
        Reason(field="phone", rule=rule, message="m", fix="f")


def test_reason_serialises_rule_as_string() -> None:
    reason = Reason(
        field="phone", value_masked="+1***01", rule=Rule.PHONE_INVALID, message="m", fix="f"
    )

    assert reason.model_dump(mode="json")["rule"] == "phone.invalid"
