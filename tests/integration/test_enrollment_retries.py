"""Enrollment a client can retry safely: a committed speaker is never reported as a failure, and an
``Idempotency-Key`` makes a retry return the speaker the first attempt created."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from edge_server.storage.db import open_database
from tests.integration.conftest import Api, ApiFactory, make_settings
from tests.integration.test_enrollment import BASE, enroll, form, speaker_files
from tests.support import ENROLL_FIELDS, free_port


async def post(
    api: Api, idempotency_key: str | None, display_name: str = ENROLL_FIELDS["display_name"]
) -> tuple[int, dict[str, Any]]:
    headers = api.headers() | ({"Idempotency-Key": idempotency_key} if idempotency_key is not None else {})
    data = form(*speaker_files(), display_name=display_name)
    resp = await api.client.post(f"{BASE}/speakers", data=data, headers=headers)
    return resp.status, await resp.json()


def speaker_count(api: Api) -> int:
    db = open_database(api.settings.db_path)
    try:
        return int(db.execute("SELECT count(*) FROM speakers").fetchone()[0])
    finally:
        db.conn.close()


async def test_a_fanout_that_fails_after_the_commit_still_answers_201_pending(
    api_factory: ApiFactory, tmp_path: Path, cluster_secret: Path
) -> None:
    """Redis is down: the speaker is stored, so the client hears 201 pending, not a 500 it would retry."""
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    api = await api_factory(make_settings(tmp_path / "data", dead_redis, cluster_secret))
    status, body = await enroll(api, *speaker_files())
    assert status == 201, body
    assert body["data"]["enrollment_status"] == "pending" and body["data"]["enrolled_on"] == []
    assert "offered to them again" in body["data"]["note"]
    assert speaker_count(api) == 1


async def test_a_retry_with_the_same_key_returns_the_same_speaker(api: Api) -> None:
    status, first = await post(api, "enroll-alice-1")
    assert status == 201, first
    status, again = await post(api, "enroll-alice-1")
    assert status == 201 and again["data"]["id"] == first["data"]["id"]
    assert "nothing new was stored" in again["data"]["note"]
    assert speaker_count(api) == 1

    # the same key for another request is refused, naming the header
    status, body = await post(api, "enroll-alice-1", display_name="Someone Else")
    assert status == 422 and body["error"]["code"] == "idempotency_key_reused"
    assert body["error"]["details"]["field"] == "Idempotency-Key"
    # without a key, or with another key, a second enrollment is a second speaker (as before)
    assert (await post(api, "enroll-alice-2"))[0] == 201
    assert speaker_count(api) == 2


async def test_concurrent_retries_with_one_key_make_one_speaker(api: Api) -> None:
    results = await asyncio.gather(post(api, "same-key"), post(api, "same-key"), post(api, "same-key"))
    assert [status for status, _ in results] == [201, 201, 201], results
    assert len({body["data"]["id"] for _, body in results}) == 1
    assert speaker_count(api) == 1
    db = open_database(api.settings.db_path)
    try:
        assert db.execute("SELECT count(*) FROM blobs").fetchone()[0] == 2  # the losers' blobs are gone
    finally:
        db.conn.close()
    blob_files = [p for p in api.settings.blob_dir.rglob("*") if p.is_file()]
    assert len(blob_files) == 2


async def test_a_malformed_key_is_a_field_error(api: Api) -> None:
    for bad in ("x" * 256, "tab\there"):
        status, body = await post(api, bad)
        assert status == 422 and body["error"]["details"]["field"] == "Idempotency-Key", body
    assert speaker_count(api) == 0


async def test_a_key_of_an_erased_speaker_is_gone_with_it(api: Api) -> None:
    status, first = await post(api, "to-be-erased")
    assert status == 201
    resp = await api.client.delete(f"{BASE}/speakers/{first['data']['id']}", headers=api.headers())
    assert resp.status == 200
    db = open_database(api.settings.db_path)
    try:
        assert db.execute("SELECT count(*) FROM idempotency_keys").fetchone()[0] == 0
    finally:
        db.conn.close()
