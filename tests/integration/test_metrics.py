"""`GET /metrics` on a real edge app: the operator's token, counts that follow real requests
(enrollment, erasure, a Backend B stream through the real upstream process), no tenant data."""

from __future__ import annotations

import re

from appliance.contract import BASE
from models.audio import SAMPLE_RATE
from tests.integration.conftest import Api
from tests.integration.test_enrollment import enroll, speaker_files, tenant_of
from tests.integration.test_streaming import connect
from tests.stream_client import pcm16
from tests.support import sample_speakers, solo_speech


def value(text: str, sample: str) -> float:
    found = re.search(rf"^{re.escape(sample)} (\S+)$", text, re.MULTILINE)
    assert found, f"{sample} not in the metrics"
    return float(found.group(1))


async def test_metrics_follow_real_traffic_and_hold_no_tenant_data(relay_api: Api) -> None:
    api = relay_api
    assert (await api.client.get("/metrics")).status == 401
    assert (await api.client.get("/metrics", headers=api.headers())).status == 401  # a tenant key is not enough
    token = api.settings.metrics_token_path.read_text().strip()
    operator = {"Authorization": f"Bearer {token}"}

    status, body = await enroll(api, *speaker_files(0))
    assert status == 201
    speaker_id = body["data"]["id"]
    assert (await enroll(api, b"not audio", b"not audio"))[0] == 415
    assert (await api.client.delete(f"{BASE}/speakers/{speaker_id}", headers=api.headers())).status == 200
    client = await connect(api)
    assert (await client.open())["backend_used"] == "B"
    await client.send_audio(pcm16(solo_speech(sample_speakers()[1])[: 6 * SAMPLE_RATE]))
    assert (await client.finish(timeout=30))[-1]["type"] == "done"

    resp = await api.client.get("/metrics", headers=operator)
    text = await resp.text()
    assert resp.status == 200 and resp.content_type == "text/plain"
    assert value(text, 'scaiecho_enrollments_total{outcome="ready"}') == 1
    assert value(text, 'scaiecho_enrollments_total{outcome="rejected"}') == 1
    assert value(text, "scaiecho_erasures_total") == 1
    assert value(text, "scaiecho_nodes_online") == 2
    assert value(text, "scaiecho_streams_open") == 0
    assert value(text, "scaiecho_stream_word_delay_seconds_count") >= 1
    delete = 'method="DELETE",route="/v1/modules/scaiecho/speakers/{speaker_id}",status="200"'
    assert value(text, f"scaiecho_http_requests_total{{{delete}}}") == 1
    assert speaker_id not in text and tenant_of(api) not in text and api.key.split("_")[1] not in text
