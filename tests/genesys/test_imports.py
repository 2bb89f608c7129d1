"""CSV upload through a presigned URL, and waiting for the import, on a fake clock."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

import httpx
import pytest

from stream_app.errors import PermanentError, RetriableError
from stream_app.genesys import (
    GenesysClient,
    GenesysPermanentError,
    GenesysRetriableError,
    ImportFailedError,
    ImportInProgressError,
)
from tests.genesys.conftest import API_URL, FakeClock, FakeGenesys, error_response

CSV = b"id,phone\r\nc1,+15550100\r\nc2,+15550101\r\n"
UPLOAD_HEADERS = {"x-amz-tagging": "list=list-1", "Content-Type": "text/csv"}
PRESIGNED_PATH = "/presigned/list-1/batch.csv"
STATUS_PATH = "/contactlists/list-1/importstatus"
SEARCH_PATH = "/contactlists/list-1/contacts/search"

IN_PROGRESS = {
    "state": "IN_PROGRESS",
    "totalRecords": 2,
    "completedRecords": 1,
    "percentComplete": 50,
}
FINISHED = {"totalRecords": 2, "completedRecords": 2, "percentComplete": 100}
NEVER_STARTED = {"totalRecords": 0, "completedRecords": 0, "percentComplete": 0}


def _upload_url_response() -> httpx.Response:
    return httpx.Response(
        200,
        json={
            "url": f"{API_URL}{PRESIGNED_PATH}?signature=abc",
            "uploadKey": "list-1/batch.csv",
            "headers": UPLOAD_HEADERS,
        },
    )


def _serve_upload(fake: FakeGenesys, put_responses: Iterable[httpx.Response] | None = None) -> None:
    fake.on("POST", "/contactlists/uploads", lambda _request: _upload_url_response())
    responses = list(put_responses or [httpx.Response(200)])

    def put(_request: httpx.Request) -> httpx.Response:
        return responses.pop(0) if len(responses) > 1 else responses[0]

    fake.routes[("PUT", PRESIGNED_PATH)] = put


def _serve_statuses(fake: FakeGenesys, statuses: Sequence[Mapping[str, object]]) -> None:
    fake.on_sequence("GET", STATUS_PATH, [httpx.Response(200, json=status) for status in statuses])


def _serve_count(fake: FakeGenesys, count: int) -> None:
    fake.on(
        "POST",
        SEARCH_PATH,
        lambda _request: httpx.Response(200, json={"entities": [], "contactsCount": count}),
    )


async def test_upload_puts_bytes_with_returned_headers(
    fake: FakeGenesys, clock: FakeClock, client: GenesysClient
) -> None:
    _serve_upload(fake)

    ticket = await client.upload_contacts_csv("list-1", CSV, "id")

    post, put = fake.api_arrivals()
    assert post.json() == {
        "contentType": "text/csv",
        "id": "list-1",
        "contactIdName": "id",
        "signedUrlTimeoutSeconds": 600,
        "clearSystemData": False,
    }
    assert put.request.method == "PUT"
    assert put.request.url.params["signature"] == "abc"
    assert put.request.content == CSV
    for name, value in UPLOAD_HEADERS.items():
        assert put.request.headers[name] == value
    assert "Authorization" not in put.request.headers
    assert ticket.list_id == "list-1"
    assert ticket.upload_key == "list-1/batch.csv"
    assert ticket.size_bytes == len(CSV)
    assert ticket.uploaded_at == clock()


async def test_upload_put_retried_on_503(
    fake: FakeGenesys, clock: FakeClock, client: GenesysClient
) -> None:
    _serve_upload(fake, [httpx.Response(503), httpx.Response(200)])

    await client.upload_contacts_csv("list-1", CSV, "id")

    assert [a.request.method for a in fake.api_arrivals()] == ["POST", "PUT", "PUT"]
    assert clock.sleeps == [0.5]


async def test_upload_put_403_raises_permanent(fake: FakeGenesys, client: GenesysClient) -> None:
    _serve_upload(
        fake, [httpx.Response(403, text="<Error><Code>SignatureDoesNotMatch</Code></Error>")]
    )

    with pytest.raises(GenesysPermanentError, match="header"):
        await client.upload_contacts_csv("list-1", CSV, "id")


async def test_upload_puts_are_not_rate_limited(
    fake: FakeGenesys, clock: FakeClock, make_client: Callable[..., GenesysClient]
) -> None:
    _serve_upload(fake)

    async with make_client(requests_per_minute=1, rate_limit_headroom=1.0) as client:
        await client.upload_contacts_csv("list-1", CSV, "id")

    # One API call (the POST) fits the limit of one per minute; the PUT needs no slot.
    assert clock.sleeps == []


async def test_upload_waits_out_running_import(
    fake: FakeGenesys, clock: FakeClock, client: GenesysClient
) -> None:
    _serve_upload(fake)
    conflict = error_response(409, "general.resource.conflict", "An import is in progress.")
    fake.on_sequence("POST", "/contactlists/uploads", [conflict, conflict, _upload_url_response()])
    _serve_statuses(fake, [IN_PROGRESS, FINISHED])

    await client.upload_contacts_csv("list-1", CSV, "id")

    methods = [
        (a.request.method, a.path.removeprefix("/api/v2/outbound")) for a in fake.api_arrivals()
    ]
    assert methods == [
        ("POST", "/contactlists/uploads"),
        ("GET", STATUS_PATH),
        ("GET", STATUS_PATH),
        ("POST", "/contactlists/uploads"),
        ("GET", STATUS_PATH),
        ("POST", "/contactlists/uploads"),
        ("PUT", PRESIGNED_PATH),
    ]
    assert clock.sleeps == [2.0, 2.0, 2.0]


async def test_upload_conflict_beyond_timeout_raises_in_progress(
    fake: FakeGenesys, clock: FakeClock, make_client: Callable[..., GenesysClient]
) -> None:
    conflict = error_response(409, "general.resource.conflict", "An import is in progress.")
    fake.on_sequence("POST", "/contactlists/uploads", [conflict])
    _serve_statuses(fake, [IN_PROGRESS])

    async with make_client(import_timeout_seconds=10, import_poll_interval_seconds=2) as client:
        with pytest.raises(ImportInProgressError) as raised:
            await client.upload_contacts_csv("list-1", CSV, "id")

    assert isinstance(raised.value, RetriableError)
    assert raised.value.status == 409
    assert "genesys.import_timeout_seconds" in str(raised.value)
    assert clock.now - 1000.0 == pytest.approx(10.0)


async def test_wait_for_import_in_progress_then_finished(
    fake: FakeGenesys, clock: FakeClock, client: GenesysClient
) -> None:
    _serve_statuses(fake, [IN_PROGRESS, IN_PROGRESS | {"completedRecords": 2}, FINISHED])

    outcome = await client.wait_for_import("list-1", expected_size=2)

    assert outcome.completed_by == "status"
    assert outcome.state is None
    assert outcome.total_records == 2
    assert outcome.completed_records == 2
    assert outcome.contacts_count is None
    assert outcome.seconds == 4.0
    assert clock.sleeps == [2.0, 2.0]


async def test_wait_for_import_failed_raises_with_reason(
    fake: FakeGenesys, client: GenesysClient
) -> None:
    _serve_statuses(fake, [IN_PROGRESS, {"state": "FAILED", "failureReason": "MISSING_CUSTOM_ID"}])

    with pytest.raises(ImportFailedError) as raised:
        await client.wait_for_import("list-1", expected_size=2)

    error = raised.value
    assert isinstance(error, PermanentError)
    assert error.failure_reason == "MISSING_CUSTOM_ID"
    assert error.code == "MISSING_CUSTOM_ID"
    assert "byte-order mark" in error.hint
    assert "list-1" in str(error)


async def test_import_failed_unknown_reason_has_hint() -> None:
    error = ImportFailedError("list-1", "SOMETHING_NEW")

    assert error.failure_reason == "SOMETHING_NEW"
    assert "import status" in error.hint


async def test_wait_for_import_stalled_falls_back_to_count(
    fake: FakeGenesys, clock: FakeClock, make_client: Callable[..., GenesysClient]
) -> None:
    _serve_statuses(fake, [NEVER_STARTED])
    _serve_count(fake, 12)

    async with make_client(import_stalled_seconds=10, import_poll_interval_seconds=2) as client:
        outcome = await client.wait_for_import("list-1", expected_size=12)

    assert outcome.completed_by == "count"
    assert outcome.state is None
    assert outcome.contacts_count == 12
    assert outcome.seconds == 10.0
    searches = [a for a in fake.api_arrivals() if a.path.endswith("/contacts/search")]
    assert len(searches) == 1


async def test_wait_for_import_counts_until_expected(
    fake: FakeGenesys, clock: FakeClock, make_client: Callable[..., GenesysClient]
) -> None:
    counts = iter([5, 9, 12])
    _serve_statuses(fake, [IN_PROGRESS])
    fake.on(
        "POST",
        SEARCH_PATH,
        lambda _request: httpx.Response(200, json={"contactsCount": next(counts)}),
    )

    async with make_client(import_stalled_seconds=10, import_poll_interval_seconds=2) as client:
        outcome = await client.wait_for_import("list-1", expected_size=12)

    assert outcome.completed_by == "count"
    assert outcome.state == "IN_PROGRESS"
    assert outcome.contacts_count == 12
    assert outcome.seconds == 14.0


async def test_wait_for_import_progress_resets_stall(
    fake: FakeGenesys, make_client: Callable[..., GenesysClient]
) -> None:
    statuses = [IN_PROGRESS | {"completedRecords": n, "percentComplete": n} for n in range(1, 9)]
    _serve_statuses(fake, [*statuses, FINISHED])
    _serve_count(fake, 0)

    async with make_client(import_stalled_seconds=3, import_poll_interval_seconds=2) as client:
        outcome = await client.wait_for_import("list-1", expected_size=2)

    assert outcome.completed_by == "status"
    assert not [a for a in fake.api_arrivals() if a.path.endswith("/contacts/search")]


async def test_wait_for_import_times_out(
    fake: FakeGenesys, clock: FakeClock, make_client: Callable[..., GenesysClient]
) -> None:
    _serve_statuses(fake, [IN_PROGRESS])
    _serve_count(fake, 1)

    async with make_client(
        import_timeout_seconds=60, import_stalled_seconds=30, import_poll_interval_seconds=5
    ) as client:
        with pytest.raises(GenesysRetriableError) as raised:
            await client.wait_for_import("list-1", expected_size=2)

    assert "genesys.import_timeout_seconds" in str(raised.value)
    assert "1 of 2 contacts" in str(raised.value)
    assert clock.now - 1000.0 == pytest.approx(60.0)


async def test_wait_for_import_counts_from_started_after(
    fake: FakeGenesys, clock: FakeClock, make_client: Callable[..., GenesysClient]
) -> None:
    _serve_statuses(fake, [NEVER_STARTED])
    _serve_count(fake, 3)

    async with make_client(import_stalled_seconds=10) as client:
        outcome = await client.wait_for_import(
            "list-1", expected_size=3, started_after=clock() - 10
        )

    assert outcome.completed_by == "count"
    assert clock.sleeps == []
