"""Small HTTP helpers against a running appliance, for e2e tests and benchmarks."""

from __future__ import annotations

from typing import Any

import aiohttp
import numpy as np

from appliance.contract import BASE
from models.audio import encode
from tests.support import enroll_fields


async def enroll(
    http: aiohttp.ClientSession,
    url: str,
    key: str,
    name: str,
    reference: np.ndarray,
    consent: np.ndarray,
    speaker: str = "speaker90",
) -> dict[str, Any]:
    """Enroll ``name`` from 16 kHz float32 recordings of sample ``speaker`` (whose consent words
    it sends); the created speaker (raises unless 201)."""
    form = aiohttp.FormData()
    fields = enroll_fields(speaker, name)
    for field, value in fields.items():
        form.add_field(field, value)
    form.add_field("reference", encode(reference, "wav"), filename="reference.wav")
    form.add_field("consent", encode(consent, "wav"), filename="consent.wav")
    async with http.post(f"{url}{BASE}/speakers", data=form, headers={"Authorization": f"Bearer {key}"}) as resp:
        body = await resp.json()
        if resp.status != 201:
            raise RuntimeError(f"enrolling {name} failed: {resp.status} {body}")
        return dict(body["data"])


async def erase(url: str, key: str, speaker_id: str) -> int | None:
    """DELETE a speaker: its status, or None when the appliance did not answer (it died, say)."""
    try:
        async with (
            aiohttp.ClientSession() as http,
            http.delete(f"{url}{BASE}/speakers/{speaker_id}", headers={"Authorization": f"Bearer {key}"}) as resp,
        ):
            return resp.status
    except aiohttp.ClientError:
        return None


async def set_policy(http: aiohttp.ClientSession, url: str, key: str, **fields: Any) -> dict[str, Any]:
    """PUT the tenant policy fields given (raises unless 200)."""
    headers = {"Authorization": f"Bearer {key}"}
    async with http.put(f"{url}{BASE}/policy", json=fields, headers=headers) as resp:
        body = await resp.json()
        if resp.status != 200:
            raise RuntimeError(f"setting the policy failed: {resp.status} {body}")
        return dict(body["data"])
