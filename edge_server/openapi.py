"""`/openapi.json`, generated: a table of the routes, and every schema from the contract's models.

Nothing here restates a field, a limit or an enum: the schemas come from appliance/contract/
(pydantic's JSON Schema), the route table only says which model each operation takes and
answers, and which errors it can give. A test checks that every route of the app is here and
that the document is a valid OpenAPI 3.1 description.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from appliance.contract import ADMIN, BASE, ENROLL, TRANSCRIBE
from appliance.contract import documents as doc

REF = "#/components/schemas/{model}"
#: Error answers every authenticated operation can give.
AUTH = {401: "missing, invalid or revoked API key (`unauthenticated`)",
        403: "the key lacks the scope (`forbidden`, `details.required_scope`)",
        429: "too many failed key checks (`rate_limited`, `Retry-After`)"}  # fmt: skip
NOT_FOUND = {404: "no such speaker in this tenant (`not_found`)", 410: "erased (`speaker_deleted`, `details.audit_id`)"}
PAGING = [
    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 200, "default": 50}},
    {"name": "cursor", "in": "query", "schema": {"type": "string"}},
]


def _path(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


@dataclass(frozen=True)
class Operation:
    """One route: what it takes, what it answers, which errors it gives."""

    method: str
    path: str
    summary: str
    answer: type[BaseModel] | None
    status: int = 200
    scope: str | None = None
    json_body: type[BaseModel] | None = None
    form_body: type[BaseModel] | None = None
    params: list[dict[str, Any]] = field(default_factory=list)
    errors: dict[int, str] = field(default_factory=dict)
    media_type: str = "application/json"


OPERATIONS = [
    Operation("get", "/healthz", "Health of Redis, nodes, ASR and the disk", doc.Health,
              errors={503: "degraded or warming (the same document)"}),
    Operation("get", "/metrics", "Prometheus metrics, for the operator's token in <data-dir>/metrics-token", None,
              media_type="text/plain", errors={401: "no or wrong operator token"}),
    Operation("get", f"{BASE}/openapi.json", "This document", None),
    Operation("post", f"{BASE}/speakers", "Enroll a speaker", doc.Data[doc.Speaker], 201, ENROLL,
              form_body=doc.EnrollmentForm,
              params=[{"name": "Idempotency-Key", "in": "header", "schema": {"type": "string", "maxLength": 255},
                       "description": "a retry with the same key returns the speaker the first request created"}],
              errors={400: "malformed multipart body (`bad_request`)",
                      413: "upload over the limit (`payload_too_large`)",
                      415: "undecodable or unsupported audio (`unsupported_media`)",
                      422: "`invalid_field`, `preflight_failed`, `idempotency_key_reused`, "
                           "`consent_speaker_mismatch` (the consent is another voice), `consent_text_mismatch` "
                           "(it does not say consent_text) or `consent_unverifiable` (a language the box cannot "
                           "transcribe, under the enforce policy)",
                      503: "the consent check cannot run now, no node or no ASR (`consent_check_unavailable`)",
                      507: "the disk is full; nothing was stored (`insufficient_storage`)"}),
    Operation("get", f"{BASE}/speakers", "The tenant's speakers, newest first", doc.Page[doc.Speaker], scope=ENROLL,
              params=[{"name": "status", "in": "query",
                       "schema": {"type": "string", "enum": ["pending", "ready", "failed", "evicted"]}}, *PAGING],
              errors={422: "bad `status`, `limit` or `cursor` (`invalid_field`)"}),
    Operation("get", f"{BASE}/speakers/{{speaker_id}}", "One speaker", doc.Data[doc.Speaker], scope=ENROLL,
              params=[_path("speaker_id")], errors=NOT_FOUND),
    Operation("delete", f"{BASE}/speakers/{{speaker_id}}", "GDPR Art. 17 erasure", doc.Data[doc.ErasureReceipt],
              scope=ENROLL, params=[_path("speaker_id")], errors=NOT_FOUND),
    Operation("post", f"{BASE}/speakers/{{speaker_id}}/references",
              "Add another recording of the enrolled person to the profile (preflight and voice check first)",
              doc.Data[doc.Speaker], 201, ENROLL, form_body=doc.ReferenceForm, params=[_path("speaker_id")],
              errors={**NOT_FOUND, 413: "upload over the limit (`payload_too_large`)",
                      415: "undecodable or unsupported audio (`unsupported_media`)",
                      422: "`invalid_field`, `preflight_failed`, or `reference_speaker_mismatch` (another voice)",
                      503: "no online node holds the speaker to compare with (`reference_check_unavailable`)",
                      507: "the disk is full; nothing was stored (`insufficient_storage`)"}),
    Operation("get", f"{BASE}/speakers/{{speaker_id}}/export",
              "GDPR Art. 15 subject access: a ZIP of the profile, consent record, both recordings and audit rows",
              None, scope=ENROLL, params=[_path("speaker_id")], errors=NOT_FOUND, media_type="application/zip"),
    Operation("get", f"{BASE}/speakers/{{speaker_id}}/warm", "Which nodes hold the speaker", doc.Data[doc.Warm],
              scope=ENROLL, params=[_path("speaker_id")], errors=NOT_FOUND),
    Operation("post", f"{BASE}/speakers/{{speaker_id}}/warm", "Re-warm on every candidate node or the listed ones",
              doc.Data[doc.WarmResult], scope=ENROLL, json_body=doc.WarmRequest, params=[_path("speaker_id")],
              errors={**NOT_FOUND, 400: "not a JSON object (`bad_request`)",
                      422: "a node id that is not a candidate (`invalid_field`)"}),
    Operation("get", f"{BASE}/nodes", "Online nodes", doc.Page[doc.Node], scope=ADMIN),
    Operation("get", f"{BASE}/audit/consents", "Consent records of the tenant, newest first",
              doc.Page[doc.ConsentAudit], scope=ADMIN, params=PAGING, errors={422: "bad `limit` or `cursor`"}),
    Operation("get", f"{BASE}/audit/erasures", "Hash-chained erasure audit rows of the tenant, newest first",
              doc.Page[doc.ErasureAudit], scope=ADMIN, params=PAGING, errors={422: "bad `limit` or `cursor`"}),
    Operation("get", f"{BASE}/audit/exports", "Subject-access exports of the tenant's speakers, newest first",
              doc.Page[doc.ExportAudit], scope=ADMIN, params=PAGING, errors={422: "bad `limit` or `cursor`"}),
    Operation("get", f"{BASE}/audit/policy", "Changes of the tenant's policy, newest first",
              doc.Page[doc.PolicyChange], scope=ADMIN, params=PAGING, errors={422: "bad `limit` or `cursor`"}),
    Operation("get", f"{BASE}/retention", "Dry run: the speakers the retention job would erase now",
              doc.Page[doc.RetentionDue], scope=ADMIN),
    Operation("get", f"{BASE}/policy", "The tenant's backend, consent checks and retention", doc.Data[doc.Policy],
              scope=ADMIN),
    Operation("put", f"{BASE}/policy", "Change the backend, the consent-check policy or the retention (audited)",
              doc.Data[doc.Policy], scope=ADMIN, json_body=doc.PolicyUpdate,
              errors={400: "not a JSON object (`bad_request`)",
                      422: "`invalid_field`, or `backend_unavailable` (B without an upstream)"}),
    Operation("get", f"{BASE}/keys", "The tenant's API keys, newest first; never a secret", doc.Page[doc.ApiKey],
              scope=ADMIN),
    Operation("post", f"{BASE}/keys", "Create a key; the secret is in this answer only", doc.Data[doc.CreatedKey], 201,
              ADMIN, json_body=doc.KeyRequest,
              errors={400: "not a JSON object (`bad_request`)", 422: "bad name or scopes (`invalid_field`)"}),
    Operation("delete", f"{BASE}/keys/{{key_id}}", "Revoke a key at once, open streams included",
              doc.Data[doc.ApiKey], scope=ADMIN, params=[_path("key_id")],
              errors={404: "no such key in this tenant (`not_found`)", 409: "a key cannot revoke itself (`own_key`)"}),
    Operation("get", f"{BASE}/transcribe/stream",
              "WebSocket upgrade for live transcription (diarize also needs scaiecho:diarize); frames: docs/api.md",
              None, 101, TRANSCRIBE,
              params=[{"name": "access_token", "in": "query", "schema": {"type": "string"},
                       "description": "the API key, for browsers that cannot set headers"}],
              errors={400: "not a WebSocket upgrade (`bad_request`)"}),
    Operation("post", f"{BASE}/transcriptions", "Transcribe a whole file (diarize also needs scaiecho:diarize)",
              doc.Data[doc.Transcription], scope=TRANSCRIBE, form_body=doc.TranscriptionForm,
              params=[{"name": "format", "in": "query",
                       "schema": {"type": "string", "enum": ["json", "srt", "vtt", "rttm"], "default": "json"}}],
              errors={413: "upload over the limit (`payload_too_large`)",
                      415: "undecodable or unsupported audio (`unsupported_media`)",
                      422: "bad field or format (`invalid_field`)",
                      503: "no backend can serve, or the upstream failed"}),
]  # fmt: skip


def _models() -> list[type[BaseModel]]:
    found: list[type[BaseModel]] = [doc.ErrorEnvelope]
    for op in OPERATIONS:
        found += [m for m in (op.answer, op.json_body, op.form_body) if m is not None and m not in found]
    return found


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": REF.format(model=_name(model))}


def _name(model: type[BaseModel]) -> str:
    return model.__name__.replace("[", "_").replace("]", "_").replace(".", "_")


def _operation(op: Operation) -> dict[str, Any]:
    error = {"content": {"application/json": {"schema": _ref(doc.ErrorEnvelope)}}}
    description = {101: "Switching Protocols"}.get(op.status, "OK" if op.status == 200 else "Created")
    ok: dict[str, Any] = {"description": description}
    if op.answer is not None:
        ok["content"] = {op.media_type: {"schema": _ref(op.answer)}}
    elif op.media_type != "application/json":
        ok["content"] = {op.media_type: {"schema": {"type": "string"}}}
    errors = {**(AUTH if op.scope else {}), **op.errors}
    out: dict[str, Any] = {
        "summary": op.summary + (f" (scope {op.scope})" if op.scope else ""),
        "responses": {
            str(op.status): ok,
            **{str(code): {"description": text, **error} for code, text in sorted(errors.items())},
        },
    }
    if op.scope:
        out["security"] = [{"bearer": []}]
    if op.params:
        out["parameters"] = op.params
    if op.json_body is not None:
        out["requestBody"] = {"required": True, "content": {"application/json": {"schema": _ref(op.json_body)}}}
    if op.form_body is not None:
        out["requestBody"] = {"required": True, "content": {"multipart/form-data": {"schema": _ref(op.form_body)}}}
    return out


def spec() -> dict[str, Any]:
    """The OpenAPI 3.1 document."""
    # pydantic names a generic's schema as `_name` does (Data[Speaker] -> Data_Speaker_)
    _, schema = models_json_schema([(m, "serialization") for m in _models()], ref_template=REF)
    schemas = schema.get("$defs", {})
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method] = _operation(op)
    return {
        "openapi": "3.1.0",
        "info": {"title": "ScaiEcho appliance", "version": "1", "description": "The contract: docs/api.md."},
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }
