"""The dedupe decision, its table entry encoding, the content fingerprint and replay after a crash."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream_app.pipeline.dedupe import (
    ChannelOwner,
    Decision,
    DedupeEntry,
    channel_values,
    channels_taken,
    decide,
    fingerprint,
    identity_key,
)

EXPIRE_SECONDS = 3600.0
NOW = 1_700_000_000.0
CONTENT = fingerprint("upsert", {"id": "c1", "phone": "+13347938701"})
OTHER_CONTENT = fingerprint("upsert", {"id": "c1", "phone": "+13347938702"})

# Validated values never contain the unit separator the fingerprint uses, and the JSON decoder
# rejects lone surrogates, so neither is drawn.
VALUE_TEXT = st.text(
    alphabet=st.characters(exclude_categories=("Cs",), exclude_characters="\x1f"), max_size=12
)
COLUMN_DATA = st.dictionaries(VALUE_TEXT, VALUE_TEXT, min_size=1, max_size=6)


def _entry(content: str, *, partition: int = 0, offset: int = 10, age: float = 60.0) -> DedupeEntry:
    return DedupeEntry(content, partition, offset, NOW - age)


@pytest.mark.parametrize(
    ("previous", "partition", "offset", "content", "expected"),
    [
        pytest.param(None, 0, 10, CONTENT, Decision.NEW, id="no-entry"),
        pytest.param(
            _entry(CONTENT, offset=5, age=EXPIRE_SECONDS + 1),
            0,
            10,
            CONTENT,
            Decision.NEW,
            id="expired-entry",
        ),
        pytest.param(
            _entry(CONTENT, offset=10, age=EXPIRE_SECONDS + 1),
            0,
            10,
            CONTENT,
            Decision.NEW,
            id="expired-own-position",
        ),
        pytest.param(
            _entry(CONTENT, offset=5, age=EXPIRE_SECONDS),
            0,
            10,
            CONTENT,
            Decision.DUPLICATE,
            id="entry-exactly-expire-seconds-old",
        ),
        pytest.param(
            _entry(CONTENT, offset=10), 0, 10, CONTENT, Decision.REPLAY, id="own-position"
        ),
        pytest.param(
            _entry(OTHER_CONTENT, offset=10),
            0,
            10,
            CONTENT,
            Decision.REPLAY,
            id="own-position-changed-content",
        ),
        pytest.param(
            _entry(CONTENT, offset=12),
            0,
            10,
            CONTENT,
            Decision.REPLAY,
            id="later-offset-same-partition",
        ),
        pytest.param(
            _entry(CONTENT, offset=5), 0, 10, CONTENT, Decision.DUPLICATE, id="earlier-offset"
        ),
        pytest.param(
            _entry(CONTENT, partition=1, offset=10),
            0,
            10,
            CONTENT,
            Decision.DUPLICATE,
            id="same-offset-other-partition",
        ),
        pytest.param(
            _entry(CONTENT, partition=1, offset=12),
            0,
            10,
            CONTENT,
            Decision.DUPLICATE,
            id="later-offset-other-partition",
        ),
        pytest.param(
            _entry(OTHER_CONTENT, offset=5), 0, 10, CONTENT, Decision.UPDATE, id="changed-content"
        ),
        pytest.param(
            _entry(OTHER_CONTENT, partition=1, offset=10),
            0,
            10,
            CONTENT,
            Decision.UPDATE,
            id="changed-content-other-partition",
        ),
    ],
)
def test_decide_cases(
    previous: DedupeEntry | None, partition: int, offset: int, content: str, expected: Decision
) -> None:
    decision = decide(
        previous,
        content,
        partition=partition,
        offset=offset,
        now=NOW,
        expire_seconds=EXPIRE_SECONDS,
    )

    assert decision is expected


@pytest.mark.parametrize(
    ("decision", "submits"),
    [
        (Decision.NEW, True),
        (Decision.UPDATE, True),
        (Decision.REPLAY, True),
        (Decision.DUPLICATE, False),
    ],
)
def test_decision_submits(decision: Decision, submits: bool) -> None:
    assert decision.submits is submits


@given(
    content=st.text(alphabet="0123456789abcdef", min_size=1, max_size=32),
    partition=st.integers(min_value=0, max_value=10_000),
    offset=st.integers(min_value=0, max_value=2**63 - 1),
    accepted_at=st.integers(min_value=0, max_value=2**40),
)
def test_entry_round_trip(content: str, partition: int, offset: int, accepted_at: int) -> None:
    entry = DedupeEntry(content, partition, offset, float(accepted_at))

    assert DedupeEntry.decode(entry.encode()) == entry


@given(accepted_at=st.floats(min_value=0, max_value=2**40, allow_nan=False))
def test_entry_round_trip_keeps_seconds(accepted_at: float) -> None:
    entry = DedupeEntry(CONTENT, 3, 42, accepted_at)

    decoded = DedupeEntry.decode(entry.encode())

    assert abs(decoded.accepted_at - accepted_at) <= 0.5


@pytest.mark.parametrize(
    "text", ["", "not-an-entry", "abc:1:2", "abc:1:2:3:4", "abc:one:2:3", "abc:1:2:later"]
)
def test_entry_decode_rejects_other_text(text: str) -> None:
    with pytest.raises(ValueError):
        DedupeEntry.decode(text)


@given(data=COLUMN_DATA, pick=st.data())
def test_fingerprint_ignores_column_order(data: dict[str, str], pick: st.DataObject) -> None:
    items = pick.draw(st.permutations(list(data.items())), label="columns")
    reordered = dict(items)

    assert fingerprint("upsert", reordered) == fingerprint("upsert", data)


@given(data=COLUMN_DATA, pick=st.data())
def test_fingerprint_changes_with_any_value(data: dict[str, str], pick: st.DataObject) -> None:
    column = pick.draw(st.sampled_from(sorted(data)), label="column")
    new_value = pick.draw(VALUE_TEXT.filter(lambda value: value != data[column]), label="value")
    changed = {**data, column: new_value}

    assert fingerprint("upsert", changed) != fingerprint("upsert", data)


@given(data=COLUMN_DATA)
def test_fingerprint_changes_with_operation(data: dict[str, str]) -> None:
    assert fingerprint("delete", data) != fingerprint("upsert", data)


def test_fingerprint_is_16_byte_hex() -> None:
    digest = fingerprint("upsert", {"id": "c1"})

    assert len(bytes.fromhex(digest)) == 16


# Replay after a crash.
#
# The worker writes a table entry for every record it submits, before the record's offset is
# committed. A crash therefore leaves the table with writes from offsets the consumer will read
# again. These tests run the decision the way the worker's `_dedupe` does, on one partition.

LIST_ID = "list-1"
PARTITION = 0

RECORDS = st.lists(
    st.tuples(st.sampled_from(["c1", "c2", "c3"]), st.sampled_from(["A", "B", "C"])),
    min_size=1,
    max_size=40,
)


def _process(
    table: dict[str, str],
    records: list[tuple[str, str]],
    start: int,
    stop: int,
    now: float,
) -> dict[int, Decision]:
    """Decide records[start:stop] at their list index as offset, writing the table as the worker does."""
    decisions: dict[int, Decision] = {}
    for offset in range(start, stop):
        contact_id, content = records[offset]
        key = identity_key(LIST_ID, contact_id)
        content_fingerprint = fingerprint("upsert", {"id": contact_id, "value": content})
        previous = DedupeEntry.decode(table[key]) if key in table else None
        decision = decide(
            previous,
            content_fingerprint,
            partition=PARTITION,
            offset=offset,
            now=now,
            expire_seconds=EXPIRE_SECONDS,
        )
        if decision.submits:
            table[key] = DedupeEntry(content_fingerprint, PARTITION, offset, now).encode()
        decisions[offset] = decision
    return decisions


def _expected_decisions(records: list[tuple[str, str]]) -> dict[int, Decision]:
    """Decide each offset from the records alone, as a crash-free run without expiry must.

    Without expiry every record with new content is accepted, so the content of the previous
    record of a contact id is the content last accepted for that identity.
    """
    last_content: dict[str, str] = {}
    expected: dict[int, Decision] = {}
    for offset, (contact_id, content) in enumerate(records):
        if contact_id not in last_content:
            expected[offset] = Decision.NEW
        elif last_content[contact_id] == content:
            expected[offset] = Decision.DUPLICATE
        else:
            expected[offset] = Decision.UPDATE
        last_content[contact_id] = content
    return expected


def _positions(table: dict[str, str]) -> dict[str, tuple[str, int, int]]:
    entries = {key: DedupeEntry.decode(text) for key, text in table.items()}
    return {
        key: (entry.fingerprint, entry.partition, entry.offset) for key, entry in entries.items()
    }


@settings(max_examples=300)
@given(records=RECORDS, pick=st.data())
def test_replay_after_crash(records: list[tuple[str, str]], pick: st.DataObject) -> None:
    crash_offset = pick.draw(st.integers(0, len(records)), label="crash_offset")
    committed_offset = pick.draw(st.integers(0, crash_offset), label="committed_offset")
    expected = _expected_decisions(records)

    # Before the crash the table keeps every write, but only offsets below committed_offset count
    # as done, so the consumer resumes at committed_offset.
    table: dict[str, str] = {}
    first_pass = _process(table, records, 0, crash_offset, NOW)
    replay = _process(table, records, committed_offset, len(records), NOW + 60)

    for offset, decision in first_pass.items():
        assert decision is expected[offset], f"first pass, offset {offset}: {decision}"

    written_before_crash = {
        offset
        for offset, decision in first_pass.items()
        if offset >= committed_offset and decision.submits
    }
    for offset, decision in replay.items():
        contact_id = records[offset][0]
        if expected[offset] is not Decision.DUPLICATE:
            assert decision.submits, f"replay, offset {offset}: new content decided {decision}"
            continue

        # A record of the same contact written later, before the crash, hides the earlier content
        # from the table, so the duplicate may be submitted again. Otherwise it must be dropped.
        later_write = any(
            later > offset and records[later][0] == contact_id for later in written_before_crash
        )
        if not later_write:
            assert decision is Decision.DUPLICATE, f"replay, offset {offset}: {decision}"

    crash_free: dict[str, str] = {}
    _process(crash_free, records, 0, len(records), NOW)

    assert _positions(table) == _positions(crash_free)


def test_replay_of_own_offset_is_not_duplicate() -> None:
    records = [("c1", "A"), ("c1", "B"), ("c1", "A")]
    table: dict[str, str] = {}
    _process(table, records, 0, 3, NOW)

    replay = _process(table, records, 0, 3, NOW + 60)

    assert replay[0] is Decision.REPLAY
    assert replay[1] is Decision.UPDATE
    assert replay[2] is Decision.UPDATE


def test_duplicate_stays_duplicate_on_replay() -> None:
    records = [("c1", "A"), ("c1", "A")]
    table: dict[str, str] = {}
    _process(table, records, 0, 2, NOW)

    replay = _process(table, records, 1, 2, NOW + 60)

    assert replay[1] is Decision.DUPLICATE


# Seed-style identity on phones and e-mails

OWNER = ChannelOwner("c-1", partition=0, offset=10, accepted_at=1_000.0)


@pytest.mark.parametrize(
    ("owner", "contact_id", "partition", "offset", "now", "expected"),
    [
        (None, "c-2", 1, 5, 1_000.0, False),
        (OWNER, "c-2", 1, 5, 1_000.0, True),
        (OWNER, "c-2", 0, 20, 1_000.0, True),
        (OWNER, "c-1", 1, 5, 1_000.0, False),
        (OWNER, "c-2", 0, 10, 1_000.0, False),
        (OWNER, "c-2", 0, 3, 1_000.0, False),
        (OWNER, "c-2", 1, 5, 1_000.0 + 61.0, False),
    ],
    ids=[
        "unclaimed",
        "other_contact_other_partition",
        "other_contact_later_offset",
        "same_contact",
        "own_position_replay",
        "later_claim_replay",
        "expired_claim",
    ],
)
def test_channels_taken_cases(
    owner: ChannelOwner | None,
    contact_id: str,
    partition: int,
    offset: int,
    now: float,
    expected: bool,
) -> None:
    taken = channels_taken(
        owner, contact_id, partition=partition, offset=offset, now=now, expire_seconds=60.0
    )

    assert taken is expected


@given(
    contact_id=st.text(min_size=1, max_size=30).filter(lambda text: "\x00" not in text),
    partition=st.integers(min_value=0, max_value=1000),
    offset=st.integers(min_value=0, max_value=2**62),
    accepted_at=st.integers(min_value=0, max_value=2**40),
)
def test_channel_owner_round_trip(
    contact_id: str, partition: int, offset: int, accepted_at: int
) -> None:
    owner = ChannelOwner(contact_id, partition, offset, float(accepted_at))

    assert ChannelOwner.decode(owner.encode()) == owner


def test_channel_values_skip_empty() -> None:
    data = {"phone": "+13347938701", "mobile": "", "email": "ada@example.com", "name": "Ada"}

    values = channel_values(data, ("phone", "mobile", "email"))

    assert values == ["+13347938701", "ada@example.com"]
