"""Reading upload forms off the wire: multipart bodies streamed with a size budget, text fields
cleaned, and the result validated by the contract's model (appliance/contract/documents.py).

The HTTP layer's job: the domain (edge_server/speakers/enrollment.py, the transcription route)
gets typed inputs and never a request.
"""

from __future__ import annotations

import unicodedata
from collections.abc import AsyncIterator

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from appliance.contract.documents import EnrollmentForm, ReferenceForm
from appliance.settings import Settings
from edge_server.errors import ApiError, invalid_field, validated

CHUNK = 64 * 1024
TEXT_FIELDS = ("display_name", "language_primary", "description", "consent_user_full_name",
               "consent_stated_purpose", "consent_text")  # fmt: skip
FILE_FIELDS = ("reference", "consent")
#: Text fields that may hold line breaks and tabs.
MULTILINE = ("consent_text", "description")
IDEMPOTENCY_HEADER = "Idempotency-Key"


def readable_size(size: int) -> str:
    """Bytes for people: ``48 MB``, ``512 KB``."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if size >= scale:
            return f"{size / scale:.3g} {unit}"
    return f"{size} bytes"


def too_large(limit: int) -> ApiError:
    """413 naming the limit in words people read, and what to do."""
    return ApiError(
        413,
        "payload_too_large",
        f"the upload is larger than the {readable_size(limit)} limit; send a shorter recording or a compressed "
        "format (flac, mp3, ogg or m4a instead of wav)",
        {"max_upload_bytes": limit},
    )


def clean_text(name: str, raw: bytes) -> str:
    """A text part as UTF-8, NFC-normalised and trimmed; 422 for bad UTF-8 or control characters."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise invalid_field(name, f"{name} is not valid UTF-8") from exc
    text = unicodedata.normalize("NFC", text).strip()
    # consent_text may hold line breaks; no field may hold other control characters.
    allowed = "\n\t" if name in MULTILINE else ""
    if any(unicodedata.category(ch) == "Cc" and ch not in allowed for ch in text):
        raise invalid_field(name, f"{name} contains control characters")
    return text


async def read_part(part: BodyPartReader, budget: int, overflow: ApiError) -> bytes:
    """One part's bytes; ``overflow`` as soon as they pass ``budget``."""
    data = bytearray()
    while chunk := await part.read_chunk(CHUNK):
        data += chunk
        if len(data) > budget:
            raise overflow
    return bytes(data)


async def multipart_parts(request: web.Request, limit: int, what: str) -> AsyncIterator[BodyPartReader]:
    """The named parts of a multipart body, after the size and media type checks every upload gets."""
    if request.content_length is not None and request.content_length > limit:
        raise too_large(limit)
    if request.content_type != "multipart/form-data":
        raise ApiError(415, "unsupported_media", f"{what} expects a multipart/form-data body")
    try:
        reader = await request.multipart()
    except (ValueError, AssertionError, HttpProcessingError) as exc:
        raise ApiError(400, "bad_request", "the multipart body is malformed") from exc
    while True:
        try:
            part = await reader.next()
        except (ValueError, HttpProcessingError) as exc:  # e.g. a part header with a control character
            raise ApiError(400, "bad_request", "the multipart body is malformed") from exc
        if part is None:
            return
        if not isinstance(part, BodyPartReader) or not part.name:
            raise ApiError(400, "bad_request", "nested or unnamed multipart parts are not accepted")
        yield part


async def read_form(request: web.Request, settings: Settings) -> EnrollmentForm:
    """Stream the multipart body into memory, refusing oversize uploads as soon as they show."""
    limit = settings.server.max_upload_bytes
    values: dict[str, bytes] = {}
    used = 0
    async for part in multipart_parts(request, limit, "enrollment"):
        name = str(part.name)
        if name not in TEXT_FIELDS and name not in FILE_FIELDS:
            raise invalid_field(name, f"unknown field {name!r}")
        if name in values:
            raise invalid_field(name, f"{name} is given more than once")
        remaining = limit - used
        field_bytes = settings.server.max_field_chars * 4  # UTF-8: at most 4 bytes a character
        if name in TEXT_FIELDS and field_bytes < remaining:
            values[name] = await read_part(part, field_bytes, invalid_field(name, f"{name} is too long"))
        else:
            values[name] = await read_part(part, remaining, too_large(limit))
        used += len(values[name])
    for name in FILE_FIELDS:
        if name in values and not values[name]:
            raise invalid_field(name, f"the {name} recording is empty")
    texts = {name: clean_text(name, values[name]) for name in TEXT_FIELDS if name in values}
    files = {name: values[name] for name in FILE_FIELDS if name in values}
    return validated(EnrollmentForm, {**{k: v or None for k, v in texts.items()}, **files})


async def read_reference_form(request: web.Request, settings: Settings) -> ReferenceForm:
    """The one-file form of `POST /speakers/{id}/references`, streamed with the upload limit."""
    limit = settings.server.max_upload_bytes
    data: bytes | None = None
    async for part in multipart_parts(request, limit, "reference upload"):
        if part.name != "reference":
            raise invalid_field(str(part.name), f"unknown field {part.name!r}; the only field is reference")
        if data is not None:
            raise invalid_field("reference", "reference is given more than once")
        data = await read_part(part, limit, too_large(limit))
    if not data:
        raise invalid_field("reference", "the reference recording is missing or empty")
    return ReferenceForm(reference=data)


def idempotency_key(request: web.Request) -> str | None:
    """The request's ``Idempotency-Key`` (1-255 printable ASCII characters), if it sent one."""
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is None:
        return None
    if not 1 <= len(key) <= 255 or not all(" " < ch < "\x7f" for ch in key):
        raise invalid_field(IDEMPOTENCY_HEADER, f"{IDEMPOTENCY_HEADER} must be 1 to 255 printable ASCII characters")
    return key
