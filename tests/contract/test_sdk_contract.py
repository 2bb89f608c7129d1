"""The official Genesys Cloud Python SDK (PureCloudPlatformClientV2 269.0.0) against the emulator.

If the SDK's deserializer accepts what the emulator returns, the emulator's shapes match the API's
models. The SDK is pointed at the emulator's loopback address only. Its Configuration host is the
emulator's base URL and it has no gateway configuration. So get_conf_url sends the login to the same
host, because the URL has no "//api." part to rewrite to "//login.". Each test checks both URLs
before the SDK sends anything.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
from PureCloudPlatformClientV2 import (
    ApiClient,
    Configuration,
    ContactList,
    ContactListEntityListing,
    ContactListingRequest,
    ContactListingResponse,
    ContactListUploadUrlRequest,
    ContactPhoneNumberColumn,
    DialerContact,
    ImportStatus,
    OutboundApi,
    UploadUrlResponse,
    WritableDialerContact,
)
from PureCloudPlatformClientV2.rest import ApiException

from local_stack.genesys_emulator import EmulatorSettings, GenesysEmulator

pytestmark = pytest.mark.contract

CLIENT_ID = "local-client"
CLIENT_SECRET = "local-secret"


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GenesysEmulator]:
    server = GenesysEmulator(EmulatorSettings(port=0), tmp_path_factory.mktemp("genesys-emulator"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def outbound(emulator: GenesysEmulator) -> OutboundApi:
    """An OutboundApi logged in with client credentials, talking only to the emulator."""
    configuration = Configuration()
    configuration.host = emulator.base_url
    configuration.gateway_configuration = None
    api_client = ApiClient(host=emulator.base_url)
    api_client.gateway_configuration = None
    assert api_client.get_conf_url("login", api_client.host) == emulator.base_url
    assert api_client.get_conf_url("api", api_client.host) == emulator.base_url

    api_client.get_client_credentials_token(CLIENT_ID, CLIENT_SECRET)
    assert api_client.access_token
    return OutboundApi(api_client)


def new_contact_list(outbound: OutboundApi) -> ContactList:
    phone = ContactPhoneNumberColumn()
    phone.column_name = "phone"
    phone.type = "cell"
    body = ContactList()
    body.name = f"contract-{uuid.uuid4()}"
    body.column_names = ["id", "firstName", "phone"]
    body.phone_columns = [phone]
    created: ContactList = outbound.post_outbound_contactlists(body)
    return created


def writable_contact(list_id: str, contact_id: str, first_name: str) -> WritableDialerContact:
    contact = WritableDialerContact()
    contact.id = contact_id
    contact.contact_list_id = list_id
    contact.data = {"id": contact_id, "firstName": first_name, "phone": "+13347938701"}
    return contact


def wait_for_import(outbound: OutboundApi, list_id: str, timeout: float = 15) -> ImportStatus:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status: ImportStatus = outbound.get_outbound_contactlist_importstatus(list_id)
        if status.state == "FAILED" or (status.state is None and status.percent_complete == 100):
            return status
        time.sleep(0.05)
    raise AssertionError(f"import on {list_id} did not finish within {timeout} s")


def test_sdk_creates_and_reads_contact_list(outbound: OutboundApi) -> None:
    created = new_contact_list(outbound)

    fetched = outbound.get_outbound_contactlist(
        created.id, include_size=True, include_import_status=True
    )

    assert isinstance(created, ContactList)
    assert created.version == 1
    assert created.phone_columns[0].column_name == "phone"
    assert created.date_created is not None
    assert isinstance(fetched, ContactList)
    assert fetched.size == 0
    assert isinstance(fetched.import_status, ImportStatus)
    assert fetched.import_status.state is None


def test_sdk_adds_contacts(outbound: OutboundApi) -> None:
    list_id = new_contact_list(outbound).id
    batch = [writable_contact(list_id, "c1", "Ann"), writable_contact(list_id, "c2", "Bob")]

    added = outbound.post_outbound_contactlist_contacts(list_id, batch, priority=False)
    fetched = outbound.get_outbound_contactlist(list_id, include_size=True)

    assert [type(item) for item in added] == [DialerContact, DialerContact]
    assert [item.id for item in added] == ["c1", "c2"]
    assert added[0].data["firstName"] == "Ann"
    assert added[0].configuration_overrides.priority is False
    assert fetched.size == 2


def test_sdk_lists_contact_lists(outbound: OutboundApi) -> None:
    created = new_contact_list(outbound)

    listing = outbound.get_outbound_contactlists(name=created.name, include_size=True, page_size=5)

    assert isinstance(listing, ContactListEntityListing)
    assert [item.id for item in listing.entities] == [created.id]
    assert listing.entities[0].size == 0
    assert listing.total == 1
    assert listing.page_count == 1


def test_sdk_upload_import_and_search(outbound: OutboundApi, emulator: GenesysEmulator) -> None:
    list_id = new_contact_list(outbound).id
    outbound.post_outbound_contactlist_contacts(list_id, [writable_contact(list_id, "c1", "Ann")])
    request = ContactListUploadUrlRequest()
    request.content_type = "text/csv"
    request.id = list_id
    request.contact_id_name = "id"

    upload = outbound.post_outbound_contactlists_uploads(request)
    with httpx.Client(timeout=10, trust_env=False) as storage:
        stored = storage.put(
            upload.url,
            content=b"id,firstName,phone\r\nc1,Anne,+1\r\nc2,Bob,+2\r\nc3,Cy,+3\r\n",
            headers=upload.headers,
        )
    status = wait_for_import(outbound, list_id)
    listing_request = ContactListingRequest()
    listing_request.page_size = 2
    listing_request.page_number = 1
    found = outbound.post_outbound_contactlist_contacts_search(list_id, listing_request)
    with_status = outbound.get_outbound_contactlist(list_id, include_import_status=True)

    assert isinstance(upload, UploadUrlResponse)
    assert upload.url.startswith(emulator.base_url + "/")
    assert upload.upload_key
    assert isinstance(upload.headers, dict)
    assert stored.status_code == 200
    assert status.state is None
    assert status.percent_complete == 100
    assert status.total_records == 3
    assert with_status.import_status.percent_complete == 100
    assert isinstance(found, ContactListingResponse)
    assert found.contacts_count == 3
    assert found.total == 3
    assert found.page_count == 2
    assert all(isinstance(item, DialerContact) for item in found.entities)
    assert len(found.entities) == 2


def test_sdk_reads_failed_import_status(outbound: OutboundApi) -> None:
    list_id = new_contact_list(outbound).id
    request = ContactListUploadUrlRequest()
    request.content_type = "text/csv"
    request.id = list_id
    request.contact_id_name = "inin-outbound-id"

    upload = outbound.post_outbound_contactlists_uploads(request)
    with httpx.Client(timeout=10, trust_env=False) as storage:
        storage.put(upload.url, content=b"id,firstName,phone\n1,A,+1\n", headers=upload.headers)
    status = wait_for_import(outbound, list_id)

    assert status.state == "FAILED"
    assert status.failure_reason == "MISSING_CUSTOM_ID"


def test_sdk_raises_api_exception_with_error_body(outbound: OutboundApi) -> None:
    with pytest.raises(ApiException) as raised:
        outbound.get_outbound_contactlist(str(uuid.uuid4()))

    assert raised.value.status == 404
    body = json.loads(raised.value.body)
    assert body["code"] == "not.found"
    assert body["contextId"] == raised.value.headers["inin-correlation-id"]


def test_sdk_updates_with_version_check(outbound: OutboundApi) -> None:
    created = new_contact_list(outbound)
    created.name = created.name + "-renamed"

    updated = outbound.put_outbound_contactlist(created.id, created)
    with pytest.raises(ApiException) as stale:
        outbound.put_outbound_contactlist(created.id, created)

    assert isinstance(updated, ContactList)
    assert updated.version == 2
    assert stale.value.status == 409
    assert json.loads(stale.value.body)["message"] == "Version does not match current version."


def test_sdk_deletes_contact_list(outbound: OutboundApi) -> None:
    list_id = new_contact_list(outbound).id

    outbound.delete_outbound_contactlist(list_id)

    with pytest.raises(ApiException) as missing:
        outbound.get_outbound_contactlist(list_id)
    assert missing.value.status == 404
