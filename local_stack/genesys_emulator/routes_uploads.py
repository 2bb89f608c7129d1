"""Contact file uploads: the presigned-URL flow and the legacy multipart upload.

Presigned flow: POST /api/v2/outbound/contactlists/uploads returns {url, uploadKey, headers}. In
Genesys Cloud the url is an S3 presigned URL; here it points back at this emulator, at
/_upload/<uploadKey>?expires=<unix time>&signature=<hmac>. The PUT to it behaves like S3: it needs
every returned header unchanged and a URL that has not expired, returns errors as S3 XML (403
AccessDenied or SignatureDoesNotMatch), and returns 200 with an ETag. Storing the file starts the
import.

Legacy flow: POST /uploads/v2/contactlist, multipart with id, fileType=contactlist,
contact-id-name and file, as the Terraform provider still sends it (to the apps. host in Genesys
Cloud). It returns 200 and starts the import.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
import uuid
from typing import Any
from urllib.parse import quote
from xml.sax.saxutils import escape

from aiohttp import web

from local_stack.genesys_emulator.auth import require_permission
from local_stack.genesys_emulator.context import (
    EmulatorContext,
    correlation_id,
    emulator_context,
    request_token,
)
from local_stack.genesys_emulator.csv_import import ensure_upload_allowed, submit_import
from local_stack.genesys_emulator.errors import bad_request
from local_stack.genesys_emulator.parsing import body_int, read_json, require_object
from local_stack.genesys_emulator.settings import UPLOAD_PERMISSION
from local_stack.genesys_emulator.state import ImportJob, PendingUpload

logger = logging.getLogger(__name__)

UPLOAD_PATH_PREFIX = "/_upload/"
CSV_CONTENT_TYPE = "text/csv"
# contentType values the SDK's ContactListUploadUrlRequest allows.
UPLOAD_CONTENT_TYPES = frozenset(
    {
        CSV_CONTENT_TYPE,
        "application/vnd.ms-excel",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    }
)
MAX_SIGNED_URL_TIMEOUT_SECONDS = 604800


async def create_upload_url(request: web.Request) -> web.Response:
    require_permission(request_token(request), UPLOAD_PERMISSION)
    context = emulator_context(request)
    body = require_object(await read_json(request), "The upload URL request")

    content_type = body.get("contentType")
    if content_type not in UPLOAD_CONTENT_TYPES:
        raise bad_request(
            f"contentType is required and must be one of {sorted(UPLOAD_CONTENT_TYPES)}, "
            f"got {content_type!r}."
        )
    if content_type != CSV_CONTENT_TYPE:
        raise bad_request(f"The emulator imports only {CSV_CONTENT_TYPE} files.")
    if body.get("importTemplateId") is not None:
        raise bad_request("importTemplateId is not supported by the emulator; send id instead.")
    timeout = body_int(
        body,
        "signedUrlTimeoutSeconds",
        context.settings.upload_url_timeout_seconds,
        1,
        MAX_SIGNED_URL_TIMEOUT_SECONDS,
    )

    list_id = body.get("id")
    if not isinstance(list_id, str) or not list_id:
        raise bad_request("id, the target contact list id, is required.")
    contact_list = context.state.contact_list(list_id)
    contact_id_name = _optional_text(body, "contactIdName")
    clear_system_data = body.get("clearSystemData", False)
    if not isinstance(clear_system_data, bool):
        raise bad_request("clearSystemData must be true or false.")
    ensure_upload_allowed(context, contact_list)

    upload = PendingUpload(
        upload_key=f"contactlists/{list_id}/{uuid.uuid4()}.csv",
        contact_list_id=list_id,
        contact_id_name=contact_id_name,
        clear_system_data=clear_system_data,
        content_type=content_type,
        headers={
            "Content-Type": content_type,
            "x-amz-server-side-encryption": "AES256",
            "x-amz-meta-contact-list-id": list_id,
        },
        expires_at=time.time() + timeout,
    )
    _drop_expired_uploads(context)
    context.state.uploads[upload.upload_key] = upload
    body_out = {
        "url": _presigned_url(request, context, upload),
        "uploadKey": upload.upload_key,
        "headers": dict(upload.headers),
    }
    logger.info("Issued upload URL %s for list %s, valid %d s", upload.upload_key, list_id, timeout)
    return web.json_response(body_out)


def _drop_expired_uploads(context: EmulatorContext) -> None:
    now = time.time()
    uploads = context.state.uploads
    for key in [key for key, upload in uploads.items() if upload.expires_at < now]:
        del uploads[key]


def _optional_text(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and (not isinstance(value, str) or not value):
        raise bad_request(f"{key} must be a non-empty string.")
    return value


def _signature(context: EmulatorContext, upload_key: str, expires: int) -> str:
    message = f"{upload_key}\n{expires}".encode()
    return hmac.new(context.upload_signing_key, message, hashlib.sha256).hexdigest()


def _presigned_url(request: web.Request, context: EmulatorContext, upload: PendingUpload) -> str:
    # The URL uses the address the request arrived on, so it works for any port, including 0.
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    origin = f"http://{sockname[0]}:{sockname[1]}" if sockname else str(request.url.origin())
    expires = int(upload.expires_at)
    signature = _signature(context, upload.upload_key, expires)
    path = UPLOAD_PATH_PREFIX + quote(upload.upload_key)
    return f"{origin}{path}?expires={expires}&signature={signature}"


def _s3_error(request: web.Request, status: int, code: str, message: str) -> web.Response:
    logger.info(
        "Rejected upload PUT %s with %d %s: %s (%s)",
        request.path,
        status,
        code,
        message,
        correlation_id(request),
    )
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{escape(code)}</Code><Message>{escape(message)}</Message>"
        f"<RequestId>{escape(correlation_id(request))}</RequestId></Error>"
    )
    return web.Response(text=body, status=status, content_type="application/xml")


async def put_presigned_upload(request: web.Request) -> web.Response:
    """Store a file PUT to a presigned URL, then start its import."""
    context = emulator_context(request)
    upload_key = request.match_info["upload_key"]
    upload = context.state.uploads.get(upload_key)
    expires_text = request.query.get("expires", "")
    signature = request.query.get("signature", "")

    if upload is None or not expires_text.isdigit():
        return _s3_error(request, 403, "AccessDenied", "Access Denied")
    expected = _signature(context, upload_key, int(expires_text))
    if not hmac.compare_digest(expected, signature) or int(expires_text) != int(upload.expires_at):
        return _s3_error(
            request, 403, "SignatureDoesNotMatch", "The URL signature does not match its query."
        )
    if time.time() > upload.expires_at:
        return _s3_error(request, 403, "AccessDenied", "Request has expired")
    mismatch = _header_mismatch(request, upload)
    if mismatch is not None and context.settings.upload_require_headers:
        return _s3_error(request, 403, "SignatureDoesNotMatch", mismatch)

    content = await _read_limited(request, context.settings.max_upload_bytes)
    if content is None:
        return _s3_error(
            request,
            400,
            "EntityTooLarge",
            f"Your proposed upload exceeds the maximum of {context.settings.max_upload_bytes} bytes",
        )

    contact_list = context.state.contact_lists.get(upload.contact_list_id)
    if contact_list is None:
        logger.warning(
            "Stored upload %s, but its contact list %s no longer exists, so nothing is imported",
            upload_key,
            upload.contact_list_id,
        )
    else:
        job = ImportJob(
            job_id=upload_key,
            contact_list_id=contact_list.id,
            content=content,
            contact_id_name=upload.contact_id_name,
            clear_system_data=upload.clear_system_data,
            request_id=correlation_id(request),
        )
        submit_import(context, contact_list, job)
    etag = '"' + hashlib.md5(content, usedforsecurity=False).hexdigest() + '"'
    return web.Response(status=200, headers={"ETag": etag})


def _header_mismatch(request: web.Request, upload: PendingUpload) -> str | None:
    """Describe the first signed header that is missing or changed, or return None."""
    for name, value in upload.headers.items():
        sent = request.headers.get(name)
        if sent is None:
            return f"The signed header {name} is missing from the PUT."
        if sent != value:
            return f"The signed header {name} was {sent!r}; the URL was signed for {value!r}."
    return None


async def _read_limited(request: web.Request, limit: int) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def post_legacy_upload(request: web.Request) -> web.Response:
    """Serve the legacy multipart POST /uploads/v2/contactlist."""
    # Unconfirmed: the permission the legacy upload service checks. Contact add is the
    # permission the newer upload permission was backfilled from.
    require_permission(request_token(request), "outbound:contact:add")
    context = emulator_context(request)
    if request.content_type != "multipart/form-data":
        raise bad_request("The upload must be multipart/form-data with id, fileType and file.")
    form = await request.post()

    list_id = form.get("id")
    if not isinstance(list_id, str) or not list_id:
        raise bad_request("The form field id, the contact list id, is required.")
    contact_list = context.state.contact_list(list_id)
    if form.get("fileType") != "contactlist":
        raise bad_request(f"fileType must be contactlist, got {form.get('fileType')!r}.")
    contact_id_name = form.get("contact-id-name")
    if not isinstance(contact_id_name, str) or not contact_id_name:
        raise bad_request("The form field contact-id-name is required.")
    file_field = form.get("file")
    if not isinstance(file_field, web.FileField):
        raise bad_request("The form field file must be a file part.")

    job = ImportJob(
        job_id=f"legacy-{uuid.uuid4()}",
        contact_list_id=contact_list.id,
        content=file_field.file.read(),
        contact_id_name=contact_id_name,
        clear_system_data=False,
        request_id=correlation_id(request),
    )
    submit_import(context, contact_list, job)
    # NOTE: the response body of the legacy upload is unconfirmed; clients check only for 200.
    return web.json_response({})
