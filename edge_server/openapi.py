"""The OpenAPI 3.1 description of the HTTP API (kept beside the routes; a test checks coverage)."""

from __future__ import annotations

from typing import Any

BASE = "/v1/modules/scaiecho"


def _error_response(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _ok(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


AUTH_ERRORS = {
    "401": _error_response("missing or invalid API key (`unauthenticated`)"),
    "403": _error_response("the key lacks the scope (`forbidden`, `details.required_scope`)"),
}

PREFLIGHT_RECORDING = {
    "type": "object",
    "properties": {
        "duration_s": {"type": "number"},
        "speech_s": {"type": "number"},
        "sample_rate_in": {"type": "integer"},
        "channels_in": {"type": "integer"},
        "format": {"type": "string", "enum": ["wav", "mp3", "flac", "ogg", "m4a"]},
        "rms_dbfs": {"type": "number"},
        "peak_dbfs": {"type": "number"},
        "clipping_ratio": {"type": "number"},
        "snr_db": {"type": ["number", "null"]},
        "issues": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "code": {"type": "string"},
                    "severity": {"type": "string", "enum": ["error", "warning"]},
                    "message": {"type": "string"},
                },
            },
        },
    },
}

SCHEMAS: dict[str, Any] = {
    "ApiKey": {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "scopes": {"type": "array", "items": {"type": "string"}},
            "created_at": {"type": "string"},
            "revoked_at": {"type": ["string", "null"]},
            "key": {"type": "string", "description": "the secret; only in the answer to POST /keys"},
        },
    },
    "Policy": {
        "type": "object",
        "properties": {
            "backend": {"type": "string", "enum": ["auto", "A", "B"]},
            "updated_at": {"type": ["string", "null"]},
        },
    },
    "PolicyUpdate": {
        "type": "object",
        "required": ["backend"],
        "additionalProperties": False,
        "properties": {"backend": {"type": "string", "enum": ["auto", "A", "B"]}},
    },
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                    "details": {"type": "object"},
                },
            }
        },
    },
    "Preflight": {
        "type": "object",
        "properties": {
            "passed": {"type": "boolean"},
            "reference": PREFLIGHT_RECORDING,
            "consent": PREFLIGHT_RECORDING,
        },
    },
    "Speaker": {
        "type": "object",
        "required": [
            "id",
            "display_name",
            "language_primary",
            "enrollment_status",
            "enrolled_on",
            "created_at",
        ],
        "properties": {
            "id": {"type": "string", "example": "spk_3f2a9c0d1e2b4a5f"},
            "display_name": {"type": "string"},
            "language_primary": {"type": "string"},
            "description": {"type": ["string", "null"]},
            "enrollment_status": {"type": "string", "enum": ["pending", "ready", "failed", "evicted"]},
            "status_reason": {"type": "string"},
            "enrolled_on": {"type": "array", "items": {"type": "string"}},
            "created_at": {"type": "string", "format": "date-time"},
            "consent": {
                "type": "object",
                "properties": {
                    "id": {"type": "string"},
                    "recorded_at": {"type": "string", "format": "date-time"},
                    "consent_audio_sha256": {"type": "string"},
                    "reference_audio_sha256": {"type": "string"},
                },
            },
            "preflight": {"$ref": "#/components/schemas/Preflight"},
            "note": {"type": "string"},
        },
    },
    "Health": {
        "type": "object",
        "properties": {
            "status": {"type": "string", "enum": ["ok", "warming", "degraded"]},
            "warming_nodes": {"type": "array", "items": {"type": "string"}},
            "redis": {"type": "string", "enum": ["ok", "down"]},
            "nodes_online": {"type": "integer"},
            "asr": {"type": "string", "enum": ["ok", "down"]},
            "disk": {"type": "string", "enum": ["ok", "low"]},
        },
    },
}

SPEAKER_ID = {"name": "speaker_id", "in": "path", "required": True, "schema": {"type": "string"}}
PAGING = [
    {"name": "limit", "in": "query", "schema": {"type": "integer", "maximum": 200}},
    {"name": "cursor", "in": "query", "schema": {"type": "string"}},
]
SCHEMAS["Warm"] = {
    "type": "object",
    "properties": {
        "speaker_id": {"type": "string"},
        "warm_node_ids": {"type": "array", "items": {"type": "string"}},
        "candidate_node_ids": {"type": "array", "items": {"type": "string"}},
        "stale_node_ids": {"type": "array", "items": {"type": "string"}},
    },
}
SCHEMAS["ErasureReceipt"] = {
    "type": "object",
    "properties": {
        "speaker_id": {"type": "string"},
        "audit_id": {"type": "string"},
        "blob_bytes_deleted": {"type": "integer"},
        "evicted_from": {"type": "array", "items": {"type": "string"}},
        "error_summary": {"type": "object", "additionalProperties": {"type": "string"}},
        "deleted_at": {"type": "string", "format": "date-time"},
    },
}
SCHEMAS["Node"] = {
    "type": "object",
    "properties": {
        "node_id": {"type": "string"},
        "engines": {"type": "array", "items": {"type": "string"}},
        "model": {"type": "string"},
        "started_at": {"type": "string", "format": "date-time"},
        "last_heartbeat_at": {"type": "string", "format": "date-time"},
        "warm_speakers": {"type": "integer"},
    },
}


def _data(schema: dict[str, Any], listed: bool = False) -> dict[str, Any]:
    if listed:
        return _ok(
            {
                "type": "object",
                "properties": {"data": {"type": "array", "items": schema}, "next_cursor": {"type": ["string", "null"]}},
            }
        )
    return _ok({"type": "object", "properties": {"data": schema}})


ADMIN_PATHS: dict[str, Any] = {
    f"{BASE}/nodes": {
        "get": {
            "summary": "Online nodes (scope scaiecho:admin)",
            "responses": {"200": _data({"$ref": "#/components/schemas/Node"}, listed=True), **AUTH_ERRORS},
        }
    },
    f"{BASE}/audit/consents": {
        "get": {
            "summary": "Consent records of the tenant, newest first (scope scaiecho:admin)",
            "parameters": PAGING,
            "responses": {"200": _data({"type": "object"}, listed=True), **AUTH_ERRORS},
        }
    },
    f"{BASE}/policy": {
        "get": {
            "summary": "The tenant's transcription policy (scope scaiecho:admin)",
            "responses": {"200": _data({"$ref": "#/components/schemas/Policy"}), **AUTH_ERRORS},
        },
        "put": {
            "summary": "Choose the backend: auto (A, B when A is unavailable), A or B (scope scaiecho:admin)",
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/PolicyUpdate"}}},
            },
            "responses": {
                "200": _data({"$ref": "#/components/schemas/Policy"}),
                **AUTH_ERRORS,
                "400": _error_response("the body is not a JSON object (`bad_request`)"),
                "422": _error_response("unknown field or backend (`invalid_field`)"),
            },
        },
    },
    f"{BASE}/keys": {
        "get": {
            "summary": "The tenant's API keys, newest first; never a secret (scope scaiecho:admin)",
            "responses": {"200": _data({"$ref": "#/components/schemas/ApiKey"}, listed=True), **AUTH_ERRORS},
        },
        "post": {
            "summary": "Create a key; the secret is in this answer only (scope scaiecho:admin)",
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["name", "scopes"],
                            "properties": {
                                "name": {"type": "string", "maxLength": 200},
                                "scopes": {"type": "array", "items": {"type": "string"}},
                            },
                        }
                    }
                },
            },
            "responses": {
                "201": _data({"$ref": "#/components/schemas/ApiKey"}),
                **AUTH_ERRORS,
                "422": _error_response("bad name or unknown scope (`invalid_field`)"),
            },
        },
    },
    f"{BASE}/keys/{{key_id}}": {
        "delete": {
            "summary": "Revoke a key at once, open streams included (scope scaiecho:admin)",
            "parameters": [{"name": "key_id", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": {
                "200": _data({"$ref": "#/components/schemas/ApiKey"}),
                **AUTH_ERRORS,
                "404": _error_response("no such key in this tenant"),
            },
        }
    },
    f"{BASE}/audit/erasures": {
        "get": {
            "summary": "Hash-chained erasure audit rows of the tenant, newest first (scope scaiecho:admin)",
            "parameters": PAGING,
            "responses": {"200": _data({"type": "object"}, listed=True), **AUTH_ERRORS},
        }
    },
}


SEGMENT = {
    "type": "object",
    "required": ["segment_id", "text", "start", "end"],
    "properties": {
        "segment_id": {"type": "integer"},
        "text": {"type": "string"},
        "start": {"type": "number", "description": "seconds from the start of the audio"},
        "end": {"type": "number"},
        "speaker_label": {"type": "string", "description": "display name, or spk_N; omitted when unknown"},
        "speaker_id": {"type": "string", "description": "only with an enrolled match"},
        "speaker_confidence": {"type": "number", "description": "only with an enrolled match"},
    },
}

TRANSCRIPTION_PATHS: dict[str, Any] = {
    f"{BASE}/transcribe/stream": {
        "get": {
            "summary": "WebSocket upgrade for live transcription (scope scaiecho:transcribe; diarize also "
            "scaiecho:diarize). Frames: see API.md and docs/api-notes.md",
            "parameters": [{"name": "access_token", "in": "query", "schema": {"type": "string"}}],
            "responses": {
                "101": {"description": "switching to the WebSocket protocol"},
                **AUTH_ERRORS,
                "400": _error_response("not a WebSocket upgrade request (`bad_request`)"),
            },
        }
    },
    f"{BASE}/transcriptions": {
        "post": {
            "summary": "Transcribe a whole file (scope scaiecho:transcribe; diarize also scaiecho:diarize)",
            "parameters": [
                {"name": "format", "in": "query", "schema": {"type": "string", "enum": ["json", "srt", "vtt", "rttm"]}}
            ],
            "requestBody": {
                "required": True,
                "content": {
                    "multipart/form-data": {
                        "schema": {
                            "type": "object",
                            "required": ["file"],
                            "properties": {
                                "file": {"type": "string", "format": "binary"},
                                "diarize": {"type": "string", "enum": ["true", "false"]},
                                "language_hint": {"type": "string", "description": "BCP-47"},
                            },
                        }
                    }
                },
            },
            "responses": {
                "200": _data(
                    {
                        "type": "object",
                        "properties": {
                            "backend_used": {"type": "string", "enum": ["A", "B"]},
                            "duration_s": {"type": "number"},
                            "truncated": {"type": "boolean"},
                            "segments": {"type": "array", "items": SEGMENT},
                        },
                    }
                ),
                **AUTH_ERRORS,
                "413": _error_response("upload larger than the limit (`payload_too_large`)"),
                "415": _error_response("undecodable or unsupported audio (`unsupported_media`)"),
                "422": _error_response("bad field or format (`invalid_field`)"),
                "503": _error_response(
                    "no backend can serve, or the upstream failed (`asr_unavailable`, `upstream_…`)"
                ),
            },
        }
    },
}


def spec() -> dict[str, Any]:
    """The whole document."""
    speaker = {"$ref": "#/components/schemas/Speaker"}
    return {
        "openapi": "3.1.0",
        "info": {"title": "ScaiEcho appliance", "version": "1"},
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
        "paths": {
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics, for the operator's token in <data-dir>/metrics-token",
                    "security": [{"bearer": []}],
                    "responses": {
                        "200": {"description": "Prometheus text format", "content": {"text/plain": {}}},
                        "401": {"description": "not the operator's metrics token"},
                    },
                }
            },
            "/healthz": {
                "get": {
                    "summary": "Health of Redis, nodes and ASR",
                    "security": [],
                    "responses": {
                        "200": _ok({"$ref": "#/components/schemas/Health"}),
                        "503": _ok({"$ref": "#/components/schemas/Health"}, "degraded"),
                    },
                }
            },
            f"{BASE}/openapi.json": {
                "get": {
                    "summary": "This document",
                    "security": [],
                    "responses": {"200": _ok({"type": "object"})},
                }
            },
            f"{BASE}/speakers": {
                "post": {
                    "summary": "Enroll a speaker (scope scaiecho:enroll)",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "multipart/form-data": {
                                "schema": {
                                    "type": "object",
                                    "required": [
                                        "display_name",
                                        "language_primary",
                                        "consent_user_full_name",
                                        "consent_stated_purpose",
                                        "consent_text",
                                        "reference",
                                        "consent",
                                    ],
                                    "properties": {
                                        "display_name": {"type": "string", "minLength": 1, "maxLength": 200},
                                        "language_primary": {"type": "string", "description": "BCP-47"},
                                        "description": {"type": "string", "maxLength": 2000},
                                        "consent_user_full_name": {"type": "string", "maxLength": 200},
                                        "consent_stated_purpose": {"type": "string", "maxLength": 1000},
                                        "consent_text": {"type": "string", "maxLength": 5000},
                                        "reference": {"type": "string", "format": "binary"},
                                        "consent": {"type": "string", "format": "binary"},
                                    },
                                }
                            }
                        },
                    },
                    "responses": {
                        "201": _ok({"type": "object", "properties": {"data": speaker}}, "enrolled"),
                        **AUTH_ERRORS,
                        "413": _error_response("upload larger than the limit (`payload_too_large`)"),
                        "507": _error_response("the disk is full; nothing was stored (`insufficient_storage`)"),
                        "415": _error_response("undecodable or unsupported audio (`unsupported_media`)"),
                        "422": _error_response("`invalid_field` or `preflight_failed`"),
                    },
                },
                "get": {
                    "summary": "List the tenant's speakers, newest first (scope scaiecho:enroll)",
                    "parameters": [
                        {"name": "status", "in": "query", "schema": {"type": "string"}},
                        {"name": "limit", "in": "query", "schema": {"type": "integer", "maximum": 200}},
                        {"name": "cursor", "in": "query", "schema": {"type": "string"}},
                    ],
                    "responses": {
                        "200": _ok(
                            {
                                "type": "object",
                                "properties": {
                                    "data": {"type": "array", "items": speaker},
                                    "next_cursor": {"type": ["string", "null"]},
                                },
                            }
                        ),
                        **AUTH_ERRORS,
                        "422": _error_response("bad query parameter (`invalid_field`)"),
                    },
                },
            },
            f"{BASE}/speakers/{{speaker_id}}": {
                "get": {
                    "summary": "One speaker (scope scaiecho:enroll)",
                    "parameters": [SPEAKER_ID],
                    "responses": {
                        "200": _ok({"type": "object", "properties": {"data": speaker}}),
                        **AUTH_ERRORS,
                        "404": _error_response("no such speaker in this tenant"),
                        "410": _error_response("the speaker was erased (`speaker_deleted`, `details.audit_id`)"),
                    },
                },
                "delete": {
                    "summary": "GDPR Art. 17 erasure (scope scaiecho:enroll)",
                    "parameters": [SPEAKER_ID],
                    "responses": {
                        "200": _data({"$ref": "#/components/schemas/ErasureReceipt"}),
                        **AUTH_ERRORS,
                        "404": _error_response("no such speaker in this tenant"),
                        "410": _error_response("already erased (`speaker_deleted`)"),
                    },
                },
            },
            f"{BASE}/speakers/{{speaker_id}}/warm": {
                "get": {
                    "summary": "Which nodes hold the speaker (scope scaiecho:enroll)",
                    "parameters": [SPEAKER_ID],
                    "responses": {"200": _data({"$ref": "#/components/schemas/Warm"}), **AUTH_ERRORS},
                },
                "post": {
                    "summary": "Re-warm on every candidate node or the listed ones (scope scaiecho:enroll)",
                    "parameters": [SPEAKER_ID],
                    "requestBody": {
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {"node_ids": {"type": "array", "items": {"type": "string"}}},
                                }
                            }
                        }
                    },
                    "responses": {
                        "200": _data({"type": "object"}),
                        **AUTH_ERRORS,
                        "422": _error_response("a node id that is not a candidate (`invalid_field`)"),
                    },
                },
            },
            **ADMIN_PATHS,
            **TRANSCRIPTION_PATHS,
        },
    }
