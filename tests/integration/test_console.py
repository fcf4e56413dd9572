"""The /admin console on a real edge app (real Redis, node processes, SQLite): sign-in, cookie
flags, CSRF, scopes, tenant isolation, keys, re-warm, erasure with its audit row, timeouts."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from appliance.contract import BASE
from appliance.redis_server import BundledRedis
from edge_server.storage.db import open_database
from tests.integration.conftest import Api, ApiFactory, NodeProcess, make_settings
from tests.integration.test_enrollment import enroll, speaker_files
from tests.integration.test_keys import key_with_other_tenant_admin


def field(html: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]+)"', html)
    assert found, f"no {name} in the page"
    return found.group(1)


async def sign_in(api: Api, key: str) -> tuple[int, str]:
    """Sign in through the form; returns the final status and page."""
    form_page = await (await api.client.get("/admin/login")).text()
    resp = await api.client.post(
        "/admin/login", data={"signin_token": field(form_page, "signin_token"), "api_key": key}
    )
    return resp.status, await resp.text()


async def csrf(api: Api, path: str = "/admin/keys") -> str:
    return field(await (await api.client.get(path)).text(), "csrf_token")


async def test_sign_in_cookie_and_headers(api: Api) -> None:
    resp = await api.client.get("/admin/nodes", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/admin/login"
    # a sign-in post without the form's own token is refused
    resp = await api.client.post("/admin/login", data={"signin_token": "forged", "api_key": api.key})
    assert resp.status == 403
    assert (await sign_in(api, "sce_nope_nope"))[0] == 401
    status, page = await sign_in(api, api.other_key)  # live, but without scaiecho:admin
    assert status == 403 and "lacks the scaiecho:admin scope" in page

    form_page = await (await api.client.get("/admin/login")).text()
    resp = await api.client.post(
        "/admin/login",
        data={"signin_token": field(form_page, "signin_token"), "api_key": api.key},
        allow_redirects=False,
    )
    assert resp.status == 303 and resp.headers["Location"] == "/admin/nodes"
    cookie = next(v for v in resp.headers.getall("Set-Cookie") if v.startswith("scaiecho_console="))
    flags = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert {"httponly", "samesite", "path"} <= flags and "secure" not in flags  # plain HTTP on loopback
    assert "SameSite=Strict" in cookie and "Path=/admin" in cookie
    assert api.key not in cookie

    resp = await api.client.get("/admin/nodes")
    page = await resp.text()
    assert resp.status == 200 and "node-1" in page and "node-2" in page
    assert "default-src 'none'" in resp.headers["Content-Security-Policy"]
    assert resp.headers["Cache-Control"] == "no-store" and resp.headers["X-Frame-Options"] == "DENY"
    for path in ("/admin/speakers", "/admin/audit", "/admin/keys", "/admin/policy", "/admin/health"):
        resp = await api.client.get(path)
        assert resp.status == 200, path
    health = await (await api.client.get("/admin/health")).text()
    assert "Redis" in health and "2 online" in health and "pyannote.audio 4.0.7" in health

    token = await csrf(api)
    assert (await api.client.post("/admin/logout", data={"csrf_token": token})).url.path == "/admin/login"
    resp = await api.client.get("/admin/keys", allow_redirects=False)
    assert resp.status == 303


async def test_forms_without_the_csrf_token_change_nothing(api: Api) -> None:
    await sign_in(api, api.key)
    before = await (await api.client.get(f"{BASE}/keys", headers=api.headers())).json()
    for data in (
        {"name": "x", "scope": "scaiecho:enroll"},
        {"name": "x", "scope": "scaiecho:enroll", "csrf_token": "no"},
    ):
        resp = await api.client.post("/admin/keys", data=data)
        assert resp.status == 403 and "CSRF" in await resp.text()
    resp = await api.client.post("/admin/policy", data={"backend": "B"})
    assert resp.status == 403
    after = await (await api.client.get(f"{BASE}/keys", headers=api.headers())).json()
    assert after == before
    assert (await (await api.client.get(f"{BASE}/policy", headers=api.headers())).json())["data"]["backend"] == "auto"


async def test_keys_created_once_and_revoked_at_once(api: Api) -> None:
    await sign_in(api, api.key)
    resp = await api.client.post(
        "/admin/keys", data={"csrf_token": await csrf(api), "name": "room 4", "scope": "scaiecho:transcribe"}
    )
    page = await resp.text()
    secret = re.search(r'<code id="new-key">([^<]+)</code>', page)
    assert resp.status == 200 and secret
    key = secret.group(1)
    assert key not in await (await api.client.get("/admin/keys")).text()  # shown once
    assert (await api.client.get(f"{BASE}/policy", headers=api.headers(key))).status == 403  # lacks admin
    listed = (await (await api.client.get(f"{BASE}/keys", headers=api.headers())).json())["data"]
    new = next(k for k in listed if k["name"] == "room 4")
    assert new["scopes"] == ["scaiecho:transcribe"]
    resp = await api.client.post(f"/admin/keys/{new['id']}/revoke", data={"csrf_token": await csrf(api)})
    assert resp.status == 200 and resp.url.path == "/admin/keys"
    assert (await api.client.get(f"{BASE}/policy", headers=api.headers(key))).status == 401
    # bad input is a page naming the problem, and nothing is created
    resp = await api.client.post("/admin/keys", data={"csrf_token": await csrf(api), "name": "no scopes"})
    assert resp.status == 422 and "scopes: List should have at least 1 item" in await resp.text()


async def test_revoking_the_signed_in_key_ends_the_session(api: Api) -> None:
    from tests.integration.test_streaming import key_with

    admin = key_with(api, ["scaiecho:admin"])
    await sign_in(api, admin)
    assert (await api.client.get("/admin/keys")).status == 200
    admin_id = admin.split("_")[1]
    assert (await api.client.delete(f"{BASE}/keys/{admin_id}", headers=api.headers())).status == 200
    assert (await api.client.get("/admin/keys", allow_redirects=False)).status == 303
    # without enroll, the speaker pages say which scope is missing
    other_admin = key_with(api, ["scaiecho:admin"])
    await sign_in(api, other_admin)
    resp = await api.client.get("/admin/speakers")
    assert resp.status == 403 and "scaiecho:enroll" in await resp.text()


async def test_rewarm_erase_and_audit(api: Api) -> None:
    status, body = await enroll(api, *speaker_files(0))
    assert status == 201, body
    speaker_id = body["data"]["id"]
    await sign_in(api, api.key)
    listing = await (await api.client.get("/admin/speakers")).text()
    assert speaker_id in listing and "node-1, node-2" in listing
    page = await (await api.client.get(f"/admin/speakers/{speaker_id}")).text()
    resp = await api.client.post(
        f"/admin/speakers/{speaker_id}/warm", data={"csrf_token": field(page, "csrf_token"), "node_id": "node-2"}
    )
    page = await resp.text()
    assert resp.status == 200 and "Re-warm done" in page and "node-2: ok" in page and "node-1:" not in page
    # no confirmation: nothing is erased
    resp = await api.client.post(f"/admin/speakers/{speaker_id}/delete", data={"csrf_token": field(page, "csrf_token")})
    assert resp.status == 422
    assert (await api.client.get(f"{BASE}/speakers/{speaker_id}", headers=api.headers())).status == 200
    resp = await api.client.post(
        f"/admin/speakers/{speaker_id}/delete", data={"csrf_token": field(page, "csrf_token"), "confirm": "erase"}
    )
    receipt = await resp.text()
    assert resp.status == 200 and "was erased" in receipt
    audit_id = re.search(r"Audit row</dt><dd><code>([^<]+)</code>", receipt)
    assert audit_id
    assert (await api.client.get(f"{BASE}/speakers/{speaker_id}", headers=api.headers())).status == 410
    audit = await (await api.client.get("/admin/audit")).text()
    assert audit_id.group(1) in audit and "MACs and anchor intact" in audit
    resp = await api.client.get(f"/admin/speakers/{speaker_id}")
    assert resp.status == 410


async def test_another_tenants_objects_are_never_shown(api: Api) -> None:
    status, body = await enroll(api, *speaker_files(1), display_name="Default Tenant Person")
    assert status == 201
    speaker_id = body["data"]["id"]
    own_key_id = (await (await api.client.get(f"{BASE}/keys", headers=api.headers())).json())["data"][0]["id"]
    await sign_in(api, key_with_other_tenant_admin(api, "scaiecho:enroll"))
    pages = {p: await (await api.client.get(p)).text() for p in ("/admin/speakers", "/admin/audit", "/admin/keys")}
    for path, page in pages.items():
        assert "Default Tenant Person" not in page and speaker_id not in page and own_key_id not in page, path
    foreign = await api.client.get(f"/admin/speakers/{speaker_id}")
    missing = await api.client.get("/admin/speakers/spk_0000000000000000")
    assert foreign.status == missing.status == 404
    assert await foreign.text() == await missing.text()
    token = field(pages["/admin/keys"], "csrf_token")
    resp = await api.client.post(f"/admin/speakers/{speaker_id}/delete", data={"csrf_token": token, "confirm": "erase"})
    assert resp.status == 404
    resp = await api.client.post(f"/admin/keys/{own_key_id}/revoke", data={"csrf_token": token})
    assert resp.status == 404
    assert (await api.client.get(f"{BASE}/speakers/{speaker_id}", headers=api.headers())).status == 200


async def test_idle_sessions_end(
    tmp_path: Path,
    redis_server: BundledRedis,
    cluster_secret: Path,
    nodes: list[NodeProcess],
    api_factory: ApiFactory,
) -> None:
    settings = make_settings(tmp_path, redis_server.url, cluster_secret, console={"idle_timeout_s": 1.0})
    api = await api_factory(settings)
    await sign_in(api, api.key)
    assert (await api.client.get("/admin/policy")).status == 200
    await asyncio.sleep(1.5)
    assert (await api.client.get("/admin/policy", allow_redirects=False)).status == 303


async def test_guessing_keys_at_the_sign_in_form_is_held_off(
    api_factory: ApiFactory, tmp_path: Path, redis_server: BundledRedis, cluster_secret: Path, nodes: list[NodeProcess]
) -> None:
    settings = make_settings(
        tmp_path / "data", redis_server.url, cluster_secret, server={"auth_failures_per_address": 4}
    )
    api = await api_factory(settings)
    assert [(await sign_in(api, f"sce_guess{i}_x"))[0] for i in range(4)] == [401] * 4
    form_page = await (await api.client.get("/admin/login")).text()
    resp = await api.client.post(
        "/admin/login", data={"signin_token": field(form_page, "signin_token"), "api_key": api.key}
    )
    assert resp.status == 429 and int(resp.headers["Retry-After"]) > 0
    assert "Too many failed sign-ins" in await resp.text()


async def test_consent_checks_retention_and_exports_in_the_console(api: Api) -> None:
    status, body = await enroll(api, *speaker_files(0))
    assert status == 201
    speaker_id = body["data"]["id"]
    export = await api.client.get(f"{BASE}/speakers/{speaker_id}/export", headers=api.headers())
    assert export.status == 200
    await sign_in(api, api.key)
    page = await (await api.client.get("/admin/policy")).text()
    assert "Due for erasure" in page and "None: every speaker was enrolled or named within 1095 days" in page
    form = {
        "csrf_token": field(page, "csrf_token"),
        "backend": "auto",
        "consent_checks": "warn",
        "retention_days": "30",
    }
    page = await (await api.client.post("/admin/policy", data=form)).text()
    assert "Consent checks set to warn. Retention set to 30 days." in page
    assert re.search(r"<td>consent_checks</td><td>off</td><td>warn</td>", page)  # this box's default is off
    # a speaker last active 40 days ago is listed for the retention job, nothing is erased by the page
    db = open_database(api.settings.db_path)
    try:
        with db.conn:
            db.execute("UPDATE speakers SET last_active_at = '2000-01-01T00:00:00.000Z'")
    finally:
        db.conn.close()
    page = await (await api.client.get("/admin/policy")).text()
    assert f'<a href="/admin/speakers/{speaker_id}">' in page
    audit = await (await api.client.get("/admin/audit")).text()
    assert "not checked" in audit and "policy off" in audit  # this record was made with the checks off
    assert audit.count("Exports (GDPR Art. 15)") == 1 and re.search(r"<title>Audit[^<]*</title>", audit)
    assert (await export.read())[:2] == b"PK" and "Exports (GDPR Art. 15)" in audit and speaker_id in audit
    speaker_page = await (await api.client.get(f"/admin/speakers/{speaker_id}")).text()
    assert 'id="consent-verification"' in speaker_page
