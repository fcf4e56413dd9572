"""The admin console in headless Chromium (Debian's, driven by Playwright) against a real
appliance bound beyond loopback, so over HTTPS with its own CA: sign in, create a key, re-warm,
erase a speaker and find the audit row, a CSRF-less post refused, another tenant kept out.

Screenshots go to $SCAIECHO_SCREENSHOT_DIR when set (docs/screenshots/ holds the last ones).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from playwright.sync_api import Browser, Page, expect, sync_playwright

from gui.client import ApiClient, ApiFailure, Connection
from tests.api_client import enroll
from tests.appliance_process import Appliance
from tests.support import enrollment_audio, sample_speakers

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ADMIN_CLI = str(Path(sys.executable).parent / "scaiecho-admin")
T = TypeVar("T")


def admin_cli(app: Appliance, *args: str) -> str:
    done = subprocess.run(
        [ADMIN_CLI, "--data-dir", str(app.data_dir), *args], capture_output=True, text=True, check=True, timeout=60
    )
    return done.stdout.strip()


async def enroll_all(app: Appliance, people: list[tuple[str, str, str]]) -> list[dict[str, Any]]:
    """(key, display name, sample speaker) -> created speakers, over HTTPS verified by the CA."""
    context = app.ssl_context()
    assert context is not None
    connector = aiohttp.TCPConnector(ssl=context)
    async with aiohttp.ClientSession(connector=connector) as http:
        created = []
        for key, name, speaker in people:
            reference, consent = enrollment_audio(speaker)
            created.append(await enroll(http, app.url, key, name, reference, consent, speaker))
        return created


@pytest.fixture(scope="module")
def secure_appliance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Appliance]:
    data_dir = tmp_path_factory.mktemp("console") / "data"
    data_dir.mkdir(mode=0o700)
    (data_dir / "config.toml").write_text('[logging]\nformat = "json"\n')
    app = Appliance(data_dir, nodes=2, host="0.0.0.0")
    try:
        app.wait_for(r"ScaiEcho ready: 2/2 pyannote nodes online")
        yield app
    finally:
        app.stop()


@pytest.fixture(scope="module")
def browser(secure_appliance: Appliance) -> Iterator[Browser]:
    """Chromium trusting exactly the appliance CA that `scaiecho-admin ca export` prints."""
    pem = admin_cli(secure_appliance, "ca", "export")
    spki = (
        x509.load_pem_x509_certificate(pem.encode())
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    pin = base64.b64encode(hashlib.sha256(spki).digest()).decode()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", f"--ignore-certificate-errors-spki-list={pin}"]
        )
        yield launched
        launched.close()


def http(app: Appliance, method: str, path: str, headers: dict[str, str], body: bytes | None = None) -> int:
    """Status of one request over HTTPS verified against the appliance CA."""
    request = urllib.request.Request(app.url + path, data=body, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30, context=app.ssl_context()) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def in_thread(coro: Coroutine[Any, Any, T]) -> T:
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def shoot(page: Page, name: str, tmp_path: Path) -> None:
    folder = Path(os.environ.get("SCAIECHO_SCREENSHOT_DIR", tmp_path))
    page.screenshot(path=str(folder / f"console-{name}.png"), full_page=True)


def sign_in(page: Page, app: Appliance, key: str) -> None:
    page.goto(f"{app.url}/admin")
    expect(page).to_have_url(f"{app.url}/admin/login")
    page.fill("#api_key", key)
    page.click("button:has-text('Sign in')")
    expect(page).to_have_url(f"{app.url}/admin/nodes")


def test_an_admin_runs_the_box_from_the_browser(secure_appliance: Appliance, browser: Browser, tmp_path: Path) -> None:
    app = secure_appliance
    names = sample_speakers()
    other_key = admin_cli(app, "key", "create", "--tenant", admin_cli(app, "tenant", "create", "acme"),
                          "--scopes", "scaiecho:admin,scaiecho:enroll", "--name", "acme admin")  # fmt: skip
    # Playwright's sync API runs an event loop in this thread: enroll from another one
    keep, erase_me, foreign = in_thread(
        enroll_all(
            app,
            [
                (app.key, "Ada Keeper", names[0]),
                (app.key, "Bo Leaving", names[1]),
                (other_key, "Acme Person", names[0]),
            ],
        )
    )
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.goto(app.url)  # the bare address leads to the console
    assert page.url.endswith("/admin/login"), page.url
    icon = page.goto(f"{app.url}/favicon.ico")
    assert icon is not None and icon.ok and icon.headers["content-type"] == "image/svg+xml"
    page.goto(f"{app.url}/admin")
    shoot(page, "login", tmp_path)
    sign_in(page, app, app.key)
    cookie = next(c for c in context.cookies() if c["name"] == "scaiecho_console")
    assert cookie["secure"] and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    expect(page.locator("tbody")).to_contain_text("node-1")
    expect(page.locator("tbody")).to_contain_text("node-2")
    expect(page.locator("tbody tr").first).to_contain_text(re.compile(r"heartbeat \d+ s ago"))
    iso = page.locator("tbody tr").first.locator("time").last.get_attribute("title")
    assert iso is not None and iso.endswith("Z")  # the exact time on hover
    shoot(page, "nodes", tmp_path)

    # a key, created with one scope; its secret is on that page only
    page.click("nav >> text=API keys")
    page.fill("#name", "meeting room 2")
    page.check("input[value='scaiecho:transcribe']")
    page.click("button:has-text('Create key')")
    secret = page.locator("#new-key").inner_text()
    assert secret.startswith("sce_")
    shoot(page, "keys", tmp_path)
    page.reload()
    expect(page.locator("#new-key")).to_have_count(0)
    expect(page.locator("tbody")).to_contain_text("meeting room 2")
    assert http(app, "GET", "/v1/modules/scaiecho/speakers", {"Authorization": f"Bearer {secret}"}) == 403

    # re-warm one speaker on one node
    page.click("nav >> text=Speakers")
    expect(page.locator("tbody")).to_contain_text("Ada Keeper")
    expect(page.locator("tbody")).not_to_contain_text("Acme Person")
    shoot(page, "speakers", tmp_path)
    page.click("text=Ada Keeper")
    page.check("input[name=node_id][value=node-2]")
    page.click("button:has-text('Re-warm')")
    expect(page.locator(".notice")).to_contain_text("Re-warm done")
    expect(page.locator(".notice")).to_contain_text("node-2: ok")
    shoot(page, "speaker", tmp_path)

    # erase another, then find its row in the audit log
    page.goto(f"{app.url}/admin/speakers/{erase_me['id']}")
    page.check("input[name=confirm]")
    page.click("button:has-text('Erase speaker')")
    expect(page.locator(".notice")).to_contain_text("Bo Leaving was erased")
    audit_id = page.locator("dt:has-text('Audit row') + dd code").inner_text()
    page.click("text=audit log")
    expect(page.locator("#chain")).to_contain_text("intact")
    expect(page.locator("main")).to_contain_text(audit_id)
    erased_row = page.locator(f"tr:has-text('{audit_id}')")
    expect(erased_row).to_contain_text("node-1, node-2")
    expect(erased_row).not_to_contain_text("[")  # no raw JSON
    expect(erased_row).to_contain_text("request")  # the erasure's reason
    # each consent record shows its checks: the sample callers' consents were verified (enforce)
    expect(page.locator("td.verification .status").first).to_have_text("verified")
    expect(page.locator("td.verification").first).to_contain_text("heard:")
    shoot(page, "audit", tmp_path)

    page.click("nav >> text=Policy")
    # no upstream is configured on this box: Backend B cannot be chosen, and says why
    expect(page.locator("input[name=backend][value=B]")).to_be_disabled()
    expect(page.locator("label:has(input[value=B])")).to_contain_text("no upstream configured")
    page.check("input[name=backend][value=A]")
    page.check("input[name=consent_checks][value=warn]")
    page.fill("input[name=retention_days]", "365")
    page.click("button:has-text('Save')")
    expect(page.locator(".notice")).to_contain_text("Backend set to A")
    expect(page.locator(".notice")).to_contain_text("Consent checks set to warn. Retention set to 365 days.")
    expect(page.locator("#policy-changes")).to_contain_text("retention_days")
    shoot(page, "policy", tmp_path)
    page.click("nav >> text=Health")
    ca_line = page.locator("tr:has-text('TLS')")
    expect(ca_line).to_contain_text("HTTPS")
    fingerprint = subprocess.run(
        [ADMIN_CLI, "--data-dir", str(app.data_dir), "ca", "export"], capture_output=True, text=True, check=True
    ).stderr.split()[-1]
    expect(ca_line).to_contain_text(fingerprint)
    shoot(page, "health", tmp_path)

    # a form post without the CSRF token changes nothing, though the cookie rides along
    before = page.goto(f"{app.url}/admin/keys")
    assert before is not None
    keys_before = page.locator("tbody tr").count()
    session_cookie = f"scaiecho_console={cookie['value']}"
    form = {"Cookie": session_cookie, "Content-Type": "application/x-www-form-urlencoded"}
    assert http(app, "POST", "/admin/keys", form, b"name=forged&scope=scaiecho%3Aadmin") == 403
    page.reload()
    assert page.locator("tbody tr").count() == keys_before

    # the other tenant's admin sees none of this tenant's objects
    other = browser.new_context()
    other_page = other.new_page()
    sign_in(other_page, app, other_key)
    other_page.click("nav >> text=Speakers")
    expect(other_page.locator("tbody")).to_contain_text("Acme Person")
    expect(other_page.locator("tbody")).not_to_contain_text("Ada Keeper")
    response = other_page.goto(f"{app.url}/admin/speakers/{keep['id']}")
    assert response is not None and response.status == 404
    other_page.goto(f"{app.url}/admin/keys")
    expect(other_page.locator("tbody")).not_to_contain_text("meeting room 2")
    other_page.goto(f"{app.url}/admin/audit")
    expect(other_page.locator("main")).not_to_contain_text(audit_id)
    assert foreign["id"] not in page.content()
    other.close()
    context.close()

    # every process logged JSON lines, and no secret reached them
    logged = [json.loads(line) for line in app.lines if line.startswith("{")]
    assert {e["process"] for e in logged} >= {"appliance", "node-1", "node-2"}
    output = "\n".join(app.lines)
    for key in (app.key, secret, other_key):
        assert key.split("_", 2)[2] not in output


def test_plain_http_is_not_served_beyond_loopback(secure_appliance: Appliance) -> None:
    plain = secure_appliance.url.replace("https://", "http://") + "/healthz"
    with pytest.raises((urllib.error.URLError, ConnectionError)):
        urllib.request.urlopen(plain, timeout=10)
    status, _ = secure_appliance.get_json("/nodes")  # HTTPS, verified against the exported CA only
    assert status == 200


def test_the_desktop_client_trusts_the_exported_ca(secure_appliance: Appliance, tmp_path: Path) -> None:
    pem = tmp_path / "scaiecho-ca.pem"
    pem.write_text(admin_cli(secure_appliance, "ca", "export") + "\n")
    trusting = ApiClient(Connection(secure_appliance.url, secure_appliance.key, str(pem)))
    assert in_thread(trusting.health())["nodes_online"] == 2
    assert in_thread(trusting.speakers()) is not None
    untrusting = ApiClient(Connection(secure_appliance.url, secure_appliance.key))
    with pytest.raises(ApiFailure) as failure:
        in_thread(untrusting.health())
    assert failure.value.status is None  # the certificate was refused: nothing was sent
