"""The Genesys Cloud emulator over real HTTP, started as a child process on a free loopback port.

Each test makes its own contact list, named with a uuid, and its own token, so the per-token rate
limit of one test never touches another. Tests that change runtime settings restore them through
the `patch_settings` fixture.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from local_stack.genesys_emulator import EmulatorSettings, GenesysEmulator, OAuthClientSettings
from local_stack.genesys_emulator.settings import ALL_PERMISSIONS, UPLOAD_PERMISSION
from local_stack.process import choose_port

pytestmark = pytest.mark.integration

LISTS = "/api/v2/outbound/contactlists"
CLIENT_ID = "local-client"
CLIENT_SECRET = "local-secret"
CODE_GRANT_CLIENT = OAuthClientSettings(
    client_id="code-grant-client",
    client_secret=SecretStr("code-grant-secret"),
    grant_types=["authorization_code"],
)
NO_UPLOAD_CLIENT = OAuthClientSettings(
    client_id="no-upload-client",
    client_secret=SecretStr("no-upload-secret"),
    permissions=[name for name in ALL_PERMISSIONS if name != UPLOAD_PERMISSION],
)
ERROR_BODY_KEYS = {"message", "code", "status", "contextId", "details", "errors"}


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GenesysEmulator]:
    settings = EmulatorSettings(port=0, extra_oauth_clients=[CODE_GRANT_CLIENT, NO_UPLOAD_CLIENT])
    server = GenesysEmulator(settings, tmp_path_factory.mktemp("genesys-emulator"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def http(emulator: GenesysEmulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emulator.base_url, timeout=10, trust_env=False) as client:
        yield client


def fetch_token(http: httpx.Client, client_id: str = CLIENT_ID, secret: str = CLIENT_SECRET) -> str:
    response = http.post(
        "/oauth/token", auth=(client_id, secret), data={"grant_type": "client_credentials"}
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


@pytest.fixture
def api(emulator: GenesysEmulator) -> Iterator[httpx.Client]:
    """An HTTP client that sends a fresh bearer token of the default client."""
    with httpx.Client(base_url=emulator.base_url, timeout=10, trust_env=False) as client:
        client.headers["Authorization"] = f"Bearer {fetch_token(client)}"
        yield client


@pytest.fixture
def patch_settings(emulator: GenesysEmulator) -> Iterator[Callable[..., None]]:
    """Change runtime settings for one test and restore them afterwards."""
    originals: dict[str, Any] = {}

    def patch(**values: Any) -> None:
        previous = emulator.patch_settings(**values)
        for name, value in previous.items():
            originals.setdefault(name, value)

    yield patch
    if originals:
        emulator.patch_settings(**originals)


def create_list(
    api: httpx.Client, columns: tuple[str, ...] = ("id", "firstName", "phone")
) -> dict[str, Any]:
    body = {
        "name": f"test-{uuid.uuid4()}",
        "columnNames": list(columns),
        "phoneColumns": [{"columnName": "phone", "type": "cell"}],
    }
    response = api.post(LISTS, json=body)
    assert response.status_code == 200, response.text
    created: dict[str, Any] = response.json()
    return created


def contact(list_id: str, contact_id: str | None, **data: str) -> dict[str, Any]:
    body: dict[str, Any] = {"contactListId": list_id, "data": data}
    if contact_id is not None:
        body["id"] = contact_id
    return body


def request_upload(api: httpx.Client, list_id: str, **extra: Any) -> httpx.Response:
    body = {"contentType": "text/csv", "id": list_id, "contactIdName": "id", **extra}
    return api.post(f"{LISTS}/uploads", json=body)


def upload_csv(api: httpx.Client, list_id: str, content: bytes) -> httpx.Response:
    """Run the presigned flow: request a URL, then PUT the file with the returned headers."""
    response = request_upload(api, list_id)
    assert response.status_code == 200, response.text
    upload = response.json()
    with httpx.Client(timeout=10, trust_env=False) as storage:
        return storage.put(upload["url"], content=content, headers=upload["headers"])


def wait_for_import(api: httpx.Client, list_id: str, timeout: float = 15) -> dict[str, Any]:
    """Poll the import status until it is FAILED or complete (no state, percentComplete 100)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status: dict[str, Any] = api.get(f"{LISTS}/{list_id}/importstatus").json()
        if status.get("state") == "FAILED":
            return status
        if "state" not in status and status.get("percentComplete") == 100:
            return status
        time.sleep(0.05)
    raise AssertionError(f"import on {list_id} did not finish within {timeout} s: {status}")


def assert_error_body(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body) >= ERROR_BODY_KEYS
    assert body["code"] == code
    assert body["status"] == status
    assert isinstance(body["details"], list)
    assert body["errors"] == []
    assert body["contextId"] == response.headers["inin-correlation-id"]
    return body


# Login


def test_token_login_returns_bearer_token(http: httpx.Client) -> None:
    response = http.post(
        "/oauth/token", auth=(CLIENT_ID, CLIENT_SECRET), data={"grant_type": "client_credentials"}
    )

    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 86399
    assert len(body["access_token"]) >= 32
    assert "refresh_token" not in body


def test_bad_secret_gets_invalid_client(http: httpx.Client) -> None:
    response = http.post(
        "/oauth/token", auth=(CLIENT_ID, "wrong-secret"), data={"grant_type": "client_credentials"}
    )

    assert response.status_code == 401
    assert response.json() == {
        "error": "invalid_client",
        "description": "authentication failed",
        "error_description": "authentication failed",
    }


def test_unknown_client_gets_invalid_client(http: httpx.Client) -> None:
    response = http.post(
        "/oauth/token", auth=("nobody", "secret"), data={"grant_type": "client_credentials"}
    )

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_client_without_grant_gets_unauthorized_client(http: httpx.Client) -> None:
    response = http.post(
        "/oauth/token",
        auth=(CODE_GRANT_CLIENT.client_id, "code-grant-secret"),
        data={"grant_type": "client_credentials"},
    )

    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "unauthorized_client"
    assert body["description"] == "client is not authorized to use the client_credential grant type"


def test_missing_or_other_grant_type_gets_400(http: httpx.Client) -> None:
    missing = http.post("/oauth/token", auth=(CLIENT_ID, CLIENT_SECRET), data={})
    other = http.post(
        "/oauth/token", auth=(CLIENT_ID, CLIENT_SECRET), data={"grant_type": "password"}
    )

    assert missing.status_code == 400
    assert missing.json()["error"] == "invalid_request"
    assert other.status_code == 400
    assert other.json()["error"] == "unsupported_grant_type"


def test_missing_token_gets_bad_credentials(http: httpx.Client) -> None:
    response = http.get(LISTS)

    body = assert_error_body(response, 401, "bad.credentials")
    assert body["message"] == "Invalid login credentials."


def test_expired_token_gets_401_and_renewed_works(
    http: httpx.Client, patch_settings: Callable[..., None]
) -> None:
    patch_settings(token_expires_in=1)
    login = http.post(
        "/oauth/token", auth=(CLIENT_ID, CLIENT_SECRET), data={"grant_type": "client_credentials"}
    )
    assert login.json()["expires_in"] == 1
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    assert http.get(LISTS, headers=headers).status_code == 200

    time.sleep(1.3)
    expired = http.get(LISTS, headers=headers)

    body = assert_error_body(expired, 401, "bad.credentials")
    assert body["message"] == "Invalid login credentials."
    renewed = {"Authorization": f"Bearer {fetch_token(http)}"}
    assert http.get(LISTS, headers=renewed).status_code == 200


# Rate limit


def test_301st_request_in_a_minute_gets_429(emulator: GenesysEmulator, http: httpx.Client) -> None:
    token = fetch_token(http)
    headers = {"Authorization": f"Bearer {token}"}
    statuses = [
        http.get(LISTS, headers=headers, params={"pageSize": 1}).status_code for _ in range(300)
    ]
    assert statuses == [200] * 300

    limited = http.get(LISTS, headers=headers)

    body = assert_error_body(limited, 429, "too.many.requests.retry.after")
    retry_after = int(limited.headers["Retry-After"])
    assert 1 <= retry_after <= 60
    assert body["message"] == (
        f"Rate limit exceeded the maximum. Retry the request in [{retry_after}] seconds"
    )
    other_token = {"Authorization": f"Bearer {fetch_token(http)}"}
    assert http.get(LISTS, headers=other_token).status_code == 200
    assert emulator.rate_limit()["max_in_window"] >= 300


# Contact lists


def test_create_list_returns_contact_list(api: httpx.Client) -> None:
    created = create_list(api)

    assert created["version"] == 1
    assert created["columnNames"] == ["id", "firstName", "phone"]
    assert created["phoneColumns"] == [{"columnName": "phone", "type": "cell"}]
    assert created["selfUri"] == f"{LISTS}/{created['id']}"
    assert created["division"]["name"] == "Home"
    assert "size" not in created
    assert "importStatus" not in created


def test_get_list_includes_size_only_when_asked(api: httpx.Client) -> None:
    list_id = create_list(api)["id"]
    api.post(f"{LISTS}/{list_id}/contacts", json=[contact(list_id, "1", id="1", phone="+1")])

    plain = api.get(f"{LISTS}/{list_id}").json()
    full = api.get(
        f"{LISTS}/{list_id}", params={"includeSize": "true", "includeImportStatus": "true"}
    ).json()

    assert "size" not in plain
    assert "importStatus" not in plain
    assert full["size"] == 1
    assert "state" not in full["importStatus"]


def test_list_contact_lists_filters_by_name(api: httpx.Client) -> None:
    created = create_list(api)

    response = api.get(LISTS, params={"name": created["name"], "pageSize": 10, "pageNumber": 1})

    body = response.json()
    assert response.status_code == 200
    assert [entity["id"] for entity in body["entities"]] == [created["id"]]
    assert body["total"] == 1
    assert body["pageSize"] == 10
    assert body["pageNumber"] == 1
    assert body["pageCount"] == 1
    assert "firstUri" in body


def test_page_size_over_100_gets_400(api: httpx.Client) -> None:
    assert_error_body(api.get(LISTS, params={"pageSize": 101}), 400, "bad.request")


def test_put_with_stale_version_gets_409(api: httpx.Client) -> None:
    created = create_list(api)
    update = {**created, "name": created["name"] + "-renamed"}
    assert api.put(f"{LISTS}/{created['id']}", json=update).status_code == 200

    stale = api.put(f"{LISTS}/{created['id']}", json=update)

    body = assert_error_body(stale, 409, "general.conflict")
    assert body["message"] == "Version does not match current version."


def test_put_with_current_version_bumps_it(api: httpx.Client) -> None:
    created = create_list(api)

    updated = api.put(
        f"{LISTS}/{created['id']}", json={**created, "name": "renamed-" + created["name"]}
    )

    assert updated.status_code == 200
    assert updated.json()["version"] == 2
    assert updated.json()["name"] == "renamed-" + created["name"]


def test_put_changing_phone_columns_gets_400(api: httpx.Client) -> None:
    created = create_list(api)
    update = {**created, "phoneColumns": [{"columnName": "id", "type": "cell"}]}

    response = api.put(f"{LISTS}/{created['id']}", json=update)

    body = assert_error_body(response, 400, "cannot.update.phone.columns")
    assert body["message"].endswith("Details: Phone number columns are different")


def test_put_changing_column_names_gets_400(api: httpx.Client) -> None:
    created = create_list(api)
    update = {**created, "columnNames": [*created["columnNames"], "extra"]}

    response = api.put(f"{LISTS}/{created['id']}", json=update)

    assert_error_body(response, 400, "cannot.update.phone.columns")


def test_list_without_columns_gets_400(api: httpx.Client) -> None:
    response = api.post(LISTS, json={"name": f"test-{uuid.uuid4()}", "columnNames": []})

    assert_error_body(response, 400, "bad.request")


def test_unknown_list_gets_404(api: httpx.Client) -> None:
    response = api.get(f"{LISTS}/{uuid.uuid4()}")

    assert_error_body(response, 404, "not.found")


def test_deleted_list_is_gone(api: httpx.Client) -> None:
    list_id = create_list(api)["id"]

    assert api.delete(f"{LISTS}/{list_id}").status_code == 204
    assert api.get(f"{LISTS}/{list_id}").status_code == 404


# Contacts


def test_add_contacts_returns_dialer_contacts(api: httpx.Client) -> None:
    list_id = create_list(api)["id"]

    response = api.post(
        f"{LISTS}/{list_id}/contacts",
        json=[
            contact(list_id, "c1", id="c1", phone="+13347938701"),
            contact(list_id, None, phone="+1"),
        ],
        params={"priority": "true"},
    )

    assert response.status_code == 200
    first, second = response.json()
    assert first["id"] == "c1"
    assert first["contactListId"] == list_id
    assert first["data"] == {"id": "c1", "phone": "+13347938701"}
    assert first["callable"] is True
    assert first["selfUri"] == f"{LISTS}/{list_id}/contacts/c1"
    assert first["configurationOverrides"] == {"priority": True}
    assert str(uuid.UUID(second["id"])) == second["id"]


def test_upsert_by_id_does_not_duplicate(api: httpx.Client, emulator: GenesysEmulator) -> None:
    list_id = create_list(api)["id"]
    path = f"{LISTS}/{list_id}/contacts"

    api.post(path, json=[contact(list_id, "same", id="same", firstName="Ann", phone="+1")])
    api.post(path, json=[contact(list_id, "same", id="same", firstName="Bob", phone="+1")])

    stored = emulator.contacts(list_id)
    assert len(stored) == 1
    assert stored[0]["data"]["firstName"] == "Bob"
    assert api.get(f"{path}/same").json()["data"]["firstName"] == "Bob"


def test_more_than_1000_contacts_gets_400(api: httpx.Client) -> None:
    list_id = create_list(api)["id"]
    batch = [contact(list_id, str(index), phone="+1") for index in range(1001)]

    too_many = api.post(f"{LISTS}/{list_id}/contacts", json=batch)
    at_limit = api.post(f"{LISTS}/{list_id}/contacts", json=batch[:1000])

    assert_error_body(too_many, 400, "bad.request")
    assert at_limit.status_code == 200
    assert len(at_limit.json()) == 1000


def test_value_over_512_chars_gets_400(api: httpx.Client) -> None:
    list_id = create_list(api)["id"]

    too_long = api.post(
        f"{LISTS}/{list_id}/contacts", json=[contact(list_id, "a", firstName="x" * 513, phone="+1")]
    )
    at_limit = api.post(
        f"{LISTS}/{list_id}/contacts", json=[contact(list_id, "a", firstName="x" * 512, phone="+1")]
    )

    body = assert_error_body(too_long, 400, "bad.request")
    assert "firstName" in body["message"]
    assert at_limit.status_code == 200


def test_long_value_truncated_when_set(
    api: httpx.Client, patch_settings: Callable[..., None]
) -> None:
    patch_settings(long_values="truncate")
    list_id = create_list(api)["id"]

    response = api.post(
        f"{LISTS}/{list_id}/contacts", json=[contact(list_id, "a", firstName="x" * 600, phone="+1")]
    )

    assert response.status_code == 200
    assert response.json()[0]["data"]["firstName"] == "x" * 512


def test_non_string_value_gets_400(api: httpx.Client) -> None:
    list_id = create_list(api)["id"]
    body = [{"contactListId": list_id, "data": {"phone": 13347938701}}]

    response = api.post(f"{LISTS}/{list_id}/contacts", json=body)

    assert_error_body(response, 400, "bad.request")


def test_unknown_data_key_gets_400(api: httpx.Client) -> None:
    list_id = create_list(api)["id"]

    response = api.post(
        f"{LISTS}/{list_id}/contacts", json=[contact(list_id, "a", phone="+1", nickname="x")]
    )

    body = assert_error_body(response, 400, "bad.request")
    assert "nickname" in body["message"]


def test_unknown_data_key_dropped_when_set(
    api: httpx.Client, patch_settings: Callable[..., None]
) -> None:
    patch_settings(unknown_data_keys="ignore")
    list_id = create_list(api)["id"]

    response = api.post(
        f"{LISTS}/{list_id}/contacts", json=[contact(list_id, "a", phone="+1", nickname="x")]
    )

    assert response.status_code == 200
    assert response.json()[0]["data"] == {"phone": "+1"}


def test_data_keys_match_columns_ignoring_case(api: httpx.Client) -> None:
    list_id = create_list(api)["id"]

    response = api.post(f"{LISTS}/{list_id}/contacts", json=[contact(list_id, "a", PHONE="+1")])

    assert response.status_code == 200
    assert response.json()[0]["data"] == {"phone": "+1"}


def test_contacts_body_not_array_gets_400(api: httpx.Client) -> None:
    list_id = create_list(api)["id"]

    response = api.post(f"{LISTS}/{list_id}/contacts", json=contact(list_id, "a", phone="+1"))

    assert_error_body(response, 400, "bad.request")


def test_malformed_json_gets_error_body(api: httpx.Client) -> None:
    list_id = create_list(api)["id"]

    response = api.post(
        f"{LISTS}/{list_id}/contacts",
        content=b'[{"contactListId": ',
        headers={"Content-Type": "application/json"},
    )

    body = assert_error_body(response, 400, "bad.request")
    assert "Traceback" not in response.text
    assert body["contextId"]


def test_delete_contacts_by_ids(api: httpx.Client, emulator: GenesysEmulator) -> None:
    list_id = create_list(api)["id"]
    batch = [contact(list_id, name, phone="+1") for name in ("a", "b", "c")]
    api.post(f"{LISTS}/{list_id}/contacts", json=batch)

    response = api.delete(f"{LISTS}/{list_id}/contacts", params={"contactIds": "a,b"})

    assert response.status_code == 204
    assert [item["id"] for item in emulator.contacts(list_id)] == ["c"]
    assert api.get(f"{LISTS}/{list_id}/contacts/a").status_code == 404


def test_search_counts_and_pages_contacts(api: httpx.Client) -> None:
    list_id = create_list(api)["id"]
    batch = [contact(list_id, str(index), id=str(index), phone="+1") for index in range(5)]
    api.post(f"{LISTS}/{list_id}/contacts", json=batch)

    empty_body = api.post(f"{LISTS}/{list_id}/contacts/search", json={})
    paged = api.post(f"{LISTS}/{list_id}/contacts/search", json={"pageSize": 2, "pageNumber": 3})

    assert empty_body.json()["contactsCount"] == 5
    assert empty_body.json()["total"] == 5
    assert paged.json()["pageCount"] == 3
    assert [item["id"] for item in paged.json()["entities"]] == ["4"]


def test_search_criteria_filter_contacts(api: httpx.Client) -> None:
    list_id = create_list(api)["id"]
    batch = [contact(list_id, name, firstName=name, phone="+1") for name in ("Ann", "Bob")]
    api.post(f"{LISTS}/{list_id}/contacts", json=batch)
    criteria = {
        "filterType": "AND",
        "clauses": [
            {
                "filterType": "AND",
                "predicates": [{"column": "firstName", "operator": "EQUALS", "value": "Bob"}],
            }
        ],
    }

    response = api.post(f"{LISTS}/{list_id}/contacts/search", json={"criteria": criteria})

    assert [item["id"] for item in response.json()["entities"]] == ["Bob"]


# Uploads and imports


def test_csv_upload_imports_rows(api: httpx.Client, emulator: GenesysEmulator) -> None:
    list_id = create_list(api)["id"]
    content = b"ID,FirstName,Phone\r\n1, Ann ,+13347938701\r\n2,Bob,000000000000\r\n"

    stored = upload_csv(api, list_id, content)
    status = wait_for_import(api, list_id)

    assert stored.status_code == 200
    assert status == {"totalRecords": 2, "completedRecords": 2, "percentComplete": 100}
    contacts = {item["id"]: item["data"] for item in emulator.contacts(list_id)}
    assert contacts == {
        "1": {"id": "1", "firstName": "Ann", "phone": "+13347938701"},
        "2": {"id": "2", "firstName": "Bob", "phone": "000000000000"},
    }


def test_reimport_updates_without_duplicates(api: httpx.Client, emulator: GenesysEmulator) -> None:
    list_id = create_list(api)["id"]
    upload_csv(api, list_id, b"id,firstName,phone\n1,Ann,+1\n")
    wait_for_import(api, list_id)

    upload_csv(api, list_id, b"id,firstName,phone\n1,Anne,+1\n2,Bob,+2\n")
    wait_for_import(api, list_id)

    contacts = {item["id"]: item["data"]["firstName"] for item in emulator.contacts(list_id)}
    assert contacts == {"1": "Anne", "2": "Bob"}


def test_bom_prefixed_id_header_fails_missing_custom_id(api: httpx.Client) -> None:
    list_id = create_list(api)["id"]
    content = "\ufeffid,firstName,phone\r\n1,Ann,+1\r\n".encode()

    upload_csv(api, list_id, content)
    status = wait_for_import(api, list_id)

    assert status["state"] == "FAILED"
    assert status["failureReason"] == "MISSING_CUSTOM_ID"


def test_51_columns_fail_column_limit(api: httpx.Client) -> None:
    list_id = create_list(api)["id"]
    extra = [f"extra{index}" for index in range(48)]
    header = ",".join(["id", "firstName", "phone", *extra])
    row = ",".join(["1", "Ann", "+1", *("x" for _ in extra)])
    assert len(header.split(",")) == 51

    upload_csv(api, list_id, f"{header}\n{row}\n".encode())
    status = wait_for_import(api, list_id)

    assert status["state"] == "FAILED"
    assert status["failureReason"] == "CONTACT_COLUMNS_LIMIT_EXCEEDED"


def test_second_upload_during_import_gets_409(
    api: httpx.Client, patch_settings: Callable[..., None]
) -> None:
    patch_settings(import_records_per_second=20)
    list_id = create_list(api)["id"]
    rows = "".join(f"{index},Name{index},+1\n" for index in range(60))
    assert upload_csv(api, list_id, f"id,firstName,phone\n{rows}".encode()).status_code == 200

    running = api.get(f"{LISTS}/{list_id}/importstatus").json()
    second = request_upload(api, list_id)

    assert running["state"] == "IN_PROGRESS"
    assert running["percentComplete"] < 100
    assert_error_body(second, 409, "general.resource.conflict")
    patch_settings(import_records_per_second=0)
    assert wait_for_import(api, list_id)["percentComplete"] == 100


def test_second_upload_queues_when_set(
    api: httpx.Client, emulator: GenesysEmulator, patch_settings: Callable[..., None]
) -> None:
    patch_settings(upload_during_import="queue", import_records_per_second=20)
    list_id = create_list(api)["id"]
    rows = "".join(f"{index},Name{index},+1\n" for index in range(40))
    first = upload_csv(api, list_id, f"id,firstName,phone\n{rows}".encode())

    second = upload_csv(api, list_id, b"id,firstName,phone\nqueued,Q,+1\n")
    patch_settings(import_records_per_second=0)
    deadline = time.monotonic() + 15
    while len(emulator.contacts(list_id)) < 41 and time.monotonic() < deadline:
        time.sleep(0.05)

    assert first.status_code == 200
    assert second.status_code == 200
    assert len(emulator.contacts(list_id)) == 41
    assert wait_for_import(api, list_id)["totalRecords"] == 1


def test_status_not_updated_when_set(
    api: httpx.Client, emulator: GenesysEmulator, patch_settings: Callable[..., None]
) -> None:
    patch_settings(import_status_when_done="not_updated")
    list_id = create_list(api)["id"]

    upload_csv(api, list_id, b"id,firstName,phone\n1,Ann,+1\n2,Bob,+2\n")
    deadline = time.monotonic() + 15
    while len(emulator.contacts(list_id)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    status = api.get(f"{LISTS}/{list_id}/importstatus").json()
    count = api.post(f"{LISTS}/{list_id}/contacts/search", json={}).json()["contactsCount"]

    assert "state" not in status
    assert status["percentComplete"] == 0
    assert count == 2


def test_upload_without_headers_gets_403(api: httpx.Client) -> None:
    list_id = create_list(api)["id"]
    upload = request_upload(api, list_id).json()

    with httpx.Client(timeout=10, trust_env=False) as storage:
        missing = storage.put(upload["url"], content=b"id,firstName,phone\n1,A,+1\n")
        changed = storage.put(
            upload["url"],
            content=b"id,firstName,phone\n1,A,+1\n",
            headers={**upload["headers"], "Content-Type": "text/plain"},
        )

    assert upload["url"].startswith(str(api.base_url).rstrip("/") + "/_upload/")
    assert missing.status_code == 403
    assert "SignatureDoesNotMatch" in missing.text
    assert changed.status_code == 403


def test_expired_upload_url_gets_403(api: httpx.Client) -> None:
    list_id = create_list(api)["id"]
    upload = request_upload(api, list_id, signedUrlTimeoutSeconds=1).json()
    time.sleep(1.5)

    with httpx.Client(timeout=10, trust_env=False) as storage:
        response = storage.put(upload["url"], content=b"id\n1\n", headers=upload["headers"])

    assert response.status_code == 403
    assert "Request has expired" in response.text


def test_upload_url_needs_upload_permission(http: httpx.Client, api: httpx.Client) -> None:
    list_id = create_list(api)["id"]
    token = fetch_token(http, NO_UPLOAD_CLIENT.client_id, "no-upload-secret")

    response = http.post(
        f"{LISTS}/uploads",
        json={"contentType": "text/csv", "id": list_id},
        headers={"Authorization": f"Bearer {token}"},
    )

    assert_error_body(response, 403, "missing.permissions")


def test_legacy_multipart_upload_imports(api: httpx.Client, emulator: GenesysEmulator) -> None:
    list_id = create_list(api)["id"]

    response = api.post(
        "/uploads/v2/contactlist",
        data={"id": list_id, "fileType": "contactlist", "contact-id-name": "id"},
        files={"file": ("contacts.csv", b"id,firstName,phone\n7,Ann,+1\n", "text/csv")},
    )

    assert response.status_code == 200
    assert wait_for_import(api, list_id)["percentComplete"] == 100
    assert [item["id"] for item in emulator.contacts(list_id)] == ["7"]


def test_injected_import_failure_ends_failed(
    api: httpx.Client, patch_settings: Callable[..., None]
) -> None:
    patch_settings(fail_imports=1, fail_imports_reason="INJECTED_FAILURE")
    list_id = create_list(api)["id"]

    upload_csv(api, list_id, b"id,firstName,phone\n1,Ann,+1\n")
    status = wait_for_import(api, list_id)

    assert status["state"] == "FAILED"
    assert status["failureReason"] == "INJECTED_FAILURE"


# Faults and inspection


def test_injected_503_returns_service_unavailable(
    api: httpx.Client, patch_settings: Callable[..., None]
) -> None:
    patch_settings(fault_5xx_share=1.0)
    failed = api.get(LISTS)
    patch_settings(fault_5xx_share=0.0)
    recovered = api.get(LISTS)

    assert_error_body(failed, 503, "service.unavailable")
    assert recovered.status_code == 200


def test_injected_429_carries_retry_after(
    api: httpx.Client, patch_settings: Callable[..., None]
) -> None:
    patch_settings(fault_429_share=1.0, retry_after_seconds=2)
    response = api.get(LISTS)
    patch_settings(fault_429_share=0.0)

    assert_error_body(response, 429, "too.many.requests.retry.after")
    assert response.headers["Retry-After"] == "2"


def test_settings_patch_rejects_fixed_settings(
    emulator: GenesysEmulator, http: httpx.Client
) -> None:
    response = http.patch("/_emulator/settings", json={"port": 1})

    assert_error_body(response, 400, "bad.request")


def test_write_log_records_request_ids(api: httpx.Client, emulator: GenesysEmulator) -> None:
    list_id = create_list(api)["id"]
    posted = api.post(
        f"{LISTS}/{list_id}/contacts",
        json=[contact(list_id, "a", phone="+1"), contact(list_id, "b", phone="+2")],
    )
    reposted = api.post(f"{LISTS}/{list_id}/contacts", json=[contact(list_id, "a", phone="+1")])
    stored = upload_csv(api, list_id, b"id,firstName,phone\nc,Cy,+3\n")
    wait_for_import(api, list_id)
    deleted = api.delete(f"{LISTS}/{list_id}/contacts/b")

    writes = emulator.writes(list_id)

    summary = [
        (item["method"], item["contact_id"], item["request_id"], item["changed"]) for item in writes
    ]
    assert summary == [
        ("contacts POST", "a", posted.headers["inin-correlation-id"], True),
        ("contacts POST", "b", posted.headers["inin-correlation-id"], True),
        ("contacts POST", "a", reposted.headers["inin-correlation-id"], False),
        ("import", "c", stored.headers["inin-correlation-id"], True),
        ("delete", "b", deleted.headers["inin-correlation-id"], True),
    ]
    assert writes[0]["data_hash"] == writes[2]["data_hash"]


def test_request_log_records_status_and_token(api: httpx.Client, emulator: GenesysEmulator) -> None:
    response = api.get(f"{LISTS}/{uuid.uuid4()}")

    entries = [
        item
        for item in emulator.requests_log()
        if item["correlation_id"] == response.headers["inin-correlation-id"]
    ]

    assert len(entries) == 1
    assert entries[0]["status"] == 404
    assert entries[0]["method"] == "GET"
    assert entries[0]["client_id"] == CLIENT_ID
    assert entries[0]["token_hash"]


def test_every_response_has_correlation_header(api: httpx.Client) -> None:
    responses = [
        api.get(LISTS),
        api.get(f"{LISTS}/{uuid.uuid4()}"),
        api.post("/oauth/token", data={}),
        api.get("/_emulator/settings"),
    ]

    for response in responses:
        assert response.headers.get("inin-correlation-id"), response.request.url


def test_foreground_run_prints_address() -> None:
    port = choose_port(0)
    with subprocess.Popen(
        [sys.executable, "-m", "local_stack.genesys_emulator", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as process:
        try:
            assert process.stdout is not None
            first_line = process.stdout.readline().strip()
        finally:
            process.terminate()
            process.wait(timeout=20)

    assert first_line == f"Genesys Cloud emulator on http://127.0.0.1:{port}"
