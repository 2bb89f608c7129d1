"""Filtering and sorting for POST /contactlists/{id}/contacts/search (a ContactListingRequest).

The request has optional criteria {filterType AND|OR, clauses: [{filterType, predicates: [{column,
columnType numeric|alphabetic, operator, value, range, inverted}]}]} and contactSorts. The emulator
evaluates the operators on contact data. It rejects contactListFilterId and the date operators
BEFORE and AFTER with 400, because it keeps no contact list filters and no date columns.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from local_stack.genesys_emulator.errors import bad_request
from local_stack.genesys_emulator.state import Contact

logger = logging.getLogger(__name__)

_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "LESS_THAN": lambda left, right: left < right,
    "LESS_THAN_EQUALS": lambda left, right: left <= right,
    "GREATER_THAN": lambda left, right: left > right,
    "GREATER_THAN_EQUALS": lambda left, right: left >= right,
}


def filter_contacts(contacts: list[Contact], body: dict[str, Any]) -> list[Contact]:
    """Return the contacts that match the request's criteria, in queue order."""
    if body.get("contactListFilterId"):
        raise bad_request("contactListFilterId is not supported by the emulator; send criteria.")

    ordered = sorted(contacts, key=lambda contact: contact.queue_position)
    criteria = body.get("criteria")
    if criteria is None:
        return ordered
    if not isinstance(criteria, dict):
        raise bad_request("criteria must be an object.")

    clauses = criteria.get("clauses") or []
    if not isinstance(clauses, list):
        raise bad_request("criteria.clauses must be an array.")
    if not clauses:
        return ordered
    combine = _combiner(criteria.get("filterType", "AND"), "criteria.filterType")
    return [
        contact
        for contact in ordered
        if combine(_clause_matches(clause, contact) for clause in clauses)
    ]


def sort_contacts(contacts: list[Contact], sorts: Any) -> list[Contact]:
    """Apply contactSorts, the last sort key being the least significant."""
    if sorts is None:
        return contacts
    if not isinstance(sorts, list):
        raise bad_request("contactSorts must be an array.")

    result = list(contacts)
    for sort in reversed(sorts):
        if not isinstance(sort, dict) or not isinstance(sort.get("fieldName"), str):
            raise bad_request("Each contactSorts entry needs a fieldName.")
        direction = sort.get("direction", "ASC")
        if direction not in ("ASC", "DESC"):
            raise bad_request(f"contactSorts.direction must be ASC or DESC, got {direction!r}.")
        field_name: str = sort["fieldName"]
        numeric = bool(sort.get("numeric", False))
        result.sort(
            key=lambda contact: _sort_value(contact.data.get(field_name, ""), numeric),
            reverse=direction == "DESC",
        )
    return result


def _sort_value(value: str, numeric: bool) -> tuple[int, Any]:
    if not numeric:
        return (0, value)
    try:
        return (0, float(value))
    except ValueError:
        return (1, value)


def _combiner(filter_type: Any, where: str) -> Callable[[Any], bool]:
    if filter_type == "AND":
        return all
    if filter_type == "OR":
        return any
    raise bad_request(f"{where} must be AND or OR, got {filter_type!r}.")


def _clause_matches(clause: Any, contact: Contact) -> bool:
    if not isinstance(clause, dict):
        raise bad_request("Each criteria clause must be an object.")
    predicates = clause.get("predicates") or []
    if not isinstance(predicates, list):
        raise bad_request("clause.predicates must be an array.")
    combine = _combiner(clause.get("filterType", "AND"), "clause.filterType")
    return combine(_predicate_matches(predicate, contact) for predicate in predicates)


def _predicate_matches(predicate: Any, contact: Contact) -> bool:
    if not isinstance(predicate, dict) or not isinstance(predicate.get("column"), str):
        raise bad_request("Each predicate must be an object with a column.")
    operator = predicate.get("operator")
    numeric = predicate.get("columnType", "alphabetic") == "numeric"
    actual = contact.data.get(predicate["column"], "")
    matched = _evaluate(operator, actual, predicate, numeric)
    return not matched if predicate.get("inverted") else matched


_TEXT_OPERATORS: dict[str, Callable[[str, str], bool]] = {
    "CONTAINS": lambda actual, value: value in actual,
    "BEGINS_WITH": lambda actual, value: actual.startswith(value),
    "ENDS_WITH": lambda actual, value: actual.endswith(value),
}


def _evaluate(operator: Any, actual: str, predicate: dict[str, Any], numeric: bool) -> bool:
    value = predicate.get("value")
    raw_range = predicate.get("range")
    range_: dict[str, Any] = raw_range if isinstance(raw_range, dict) else {}
    if operator == "EQUALS":
        return bool(_comparable(actual, numeric) == _comparable(value, numeric))
    if operator in _TEXT_OPERATORS:
        return _TEXT_OPERATORS[operator](actual, "" if value is None else str(value))
    if operator == "IN":
        return actual in (range_.get("inSet") or [])
    if operator in _COMPARISONS:
        return _compare(_COMPARISONS[operator], actual, value, numeric)
    if operator == "BETWEEN":
        return _between(actual, range_, numeric)
    raise bad_request(f"The predicate operator {operator!r} is not supported by the emulator.")


def _comparable(value: Any, numeric: bool) -> Any:
    if not numeric:
        return "" if value is None else str(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _compare(check: Callable[[Any, Any], bool], actual: str, value: Any, numeric: bool) -> bool:
    left, right = _comparable(actual, numeric), _comparable(value, numeric)
    if left is None or right is None:
        return False
    return check(left, right)


def _between(actual: str, range_: dict[str, Any], numeric: bool) -> bool:
    value = _comparable(actual, numeric)
    if value is None:
        return False
    low, high = range_.get("min"), range_.get("max")
    if low is not None:
        bound = _comparable(low, numeric)
        inclusive = range_.get("minInclusive", True)
        if bound is None or value < bound or (value == bound and not inclusive):
            return False
    if high is not None:
        bound = _comparable(high, numeric)
        inclusive = range_.get("maxInclusive", True)
        if bound is None or value > bound or (value == bound and not inclusive):
            return False
    return True
