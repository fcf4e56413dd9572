"""`/keys`: list, create (never escalating), revoke at once — open streams included."""

from __future__ import annotations

import asyncio
import json

from appliance.contract import BASE
from appliance.settings import Settings
from tests.integration.conftest import Api, ApiFactory
from tests.integration.test_streaming import Client, connect, key_with


async def test_create_list_and_revoke(api: Api) -> None:
    resp = await api.client.post(
        f"{BASE}/keys", json={"name": "meeting room", "scopes": ["scaiecho:transcribe"]}, headers=api.headers()
    )
    body = await resp.json()
    assert (
        resp.status == 201
        and body["data"]["key"].startswith("sce_")
        and body["data"]["scopes"] == ["scaiecho:transcribe"]
    )
    new_key, key_id = body["data"]["key"], body["data"]["id"]
    listed = (await (await api.client.get(f"{BASE}/keys", headers=api.headers())).json())["data"]
    assert key_id in [k["id"] for k in listed]
    assert "key" not in json.dumps(listed).replace('"keys"', "")  # no secret is ever listed
    assert all("secret" not in k for k in listed)
    # the new key works, then is revoked at once
    resp = await api.client.post(f"{BASE}/transcriptions", data=b"", headers=api.headers(new_key))
    assert resp.status != 401
    resp = await api.client.delete(f"{BASE}/keys/{key_id}", headers=api.headers())
    assert resp.status == 200 and (await resp.json())["data"]["revoked_at"]
    resp = await api.client.post(f"{BASE}/transcriptions", data=b"", headers=api.headers(new_key))
    assert resp.status == 401


async def test_no_escalation_no_foreign_keys_and_validation(api: Api) -> None:
    limited = key_with(api, ["scaiecho:admin", "scaiecho:transcribe"])
    resp = await api.client.post(
        f"{BASE}/keys", json={"name": "x", "scopes": ["scaiecho:enroll"]}, headers=api.headers(limited)
    )
    assert resp.status == 403 and (await resp.json())["error"]["details"]["required_scope"] == "scaiecho:enroll"
    for body, field in (
        ({"name": "", "scopes": ["scaiecho:transcribe"]}, "name"),
        ({"name": "x", "scopes": []}, "scopes"),
        ({"name": "x", "scopes": ["scaiecho:everything"]}, "scopes"),
        ({"name": "x", "scopes": ["scaiecho:transcribe"], "admin": True}, "admin"),
    ):
        resp = await api.client.post(f"{BASE}/keys", json=body, headers=api.headers())
        assert (resp.status, (await resp.json())["error"]["details"]["field"]) == (422, field)
    # another tenant's key id is a 404 identical to a missing one
    own = (await (await api.client.get(f"{BASE}/keys", headers=api.headers())).json())["data"][0]["id"]
    other_admin = key_with_other_tenant_admin(api)
    foreign = await api.client.delete(f"{BASE}/keys/{own}", headers=api.headers(other_admin))
    missing = await api.client.delete(f"{BASE}/keys/nope", headers=api.headers(other_admin))
    assert foreign.status == missing.status == 404
    assert await foreign.read() == await missing.read()


def key_with_other_tenant_admin(api: Api, *more_scopes: str) -> str:
    from edge_server.access.tenancy import create_key, find_tenant
    from edge_server.storage.db import open_database

    db = open_database(api.settings.db_path)
    try:
        tenant = find_tenant(db, "other")
        assert tenant is not None
        return create_key(db, tenant, ["scaiecho:admin", *more_scopes], "other admin").token
    finally:
        db.conn.close()


async def test_revoking_through_the_api_closes_an_open_stream(relay_api: Api) -> None:
    api = relay_api
    resp = await api.client.post(
        f"{BASE}/keys", json={"name": "stream", "scopes": ["scaiecho:transcribe"]}, headers=api.headers()
    )
    created = (await resp.json())["data"]
    client: Client = await connect(api, created["key"])
    assert (await client.open())["type"] == "ready"
    assert (await api.client.delete(f"{BASE}/keys/{created['id']}", headers=api.headers())).status == 200
    error = await client.next(timeout=5)
    assert error["code"] == "unauthenticated"
    await asyncio.wait_for(client.until_closed(), 10)
    assert client.ws.close_code == 4401


async def test_an_admin_key_cannot_revoke_itself(api: Api) -> None:
    """Not even the bootstrap key: an admin must never lock the tenant out by accident."""
    listed = (await (await api.client.get(f"{BASE}/keys", headers=api.headers())).json())["data"]
    own = next(k["id"] for k in listed if k["name"] == "bootstrap")
    resp = await api.client.delete(f"{BASE}/keys/{own}", headers=api.headers())
    body = await resp.json()
    assert resp.status == 409 and body["error"]["code"] == "own_key", body
    assert (await api.client.get(f"{BASE}/keys", headers=api.headers())).status == 200  # still valid
    # another admin key may revoke it
    second = key_with(api, ["scaiecho:admin"])
    assert (await api.client.delete(f"{BASE}/keys/{own}", headers=api.headers(second))).status == 200
    assert (await api.client.get(f"{BASE}/keys", headers=api.headers())).status == 401


async def test_guessing_keys_is_answered_429_with_retry_after(api_factory: ApiFactory, settings: Settings) -> None:
    limits = settings.server.model_copy(update={"auth_failures_per_address": 5, "auth_failures_per_key": 3})
    api = await api_factory(settings.model_copy(update={"server": limits}))
    statuses = []
    for i in range(6):
        resp = await api.client.get(f"{BASE}/speakers", headers=api.headers(f"sce_guess{i}_wrong"))
        statuses.append(resp.status)
    assert statuses == [401] * 5 + [429]
    assert int(resp.headers["Retry-After"]) > 0
    body = await resp.json()
    assert body["error"]["code"] == "rate_limited" and body["error"]["details"]["retry_after_s"] > 0
    # while held off, even the right key from that address is not checked
    assert (await api.client.get(f"{BASE}/speakers", headers=api.headers())).status == 429


async def test_a_key_id_under_attack_is_held_off(api_factory: ApiFactory, settings: Settings) -> None:
    limits = settings.server.model_copy(update={"auth_failures_per_address": 100, "auth_failures_per_key": 3})
    api = await api_factory(settings.model_copy(update={"server": limits}))
    key_id = api.key.split("_")[1]
    for _ in range(3):
        resp = await api.client.get(f"{BASE}/speakers", headers=api.headers(f"sce_{key_id}_wrongsecret"))
        assert resp.status == 401
    assert (await api.client.get(f"{BASE}/speakers", headers=api.headers())).status == 429
    # other keys still work
    assert (await api.client.get(f"{BASE}/speakers", headers=api.headers(api.other_key))).status == 200
