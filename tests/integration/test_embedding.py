"""The GE2E wrapper through pyannote.audio's Inference against resemblyzer's own encoder."""

from __future__ import annotations

import numpy as np
import pytest

from models.registry import load_embedder
from models.settings import ModelSettings
from tests.support import enrollment_audio, sample_speakers, solo_speech


@pytest.fixture(scope="module")
def embedder():
    return load_embedder(ModelSettings())


def test_parity_with_resemblyzer_on_real_speech(embedder) -> None:
    resemblyzer = pytest.importorskip("resemblyzer")
    encoder = resemblyzer.VoiceEncoder(device="cpu", verbose=False)
    for speaker in sample_speakers():
        speech = resemblyzer.preprocess_wav(solo_speech(speaker))
        theirs = encoder.embed_utterance(speech)
        ours = embedder.embed(speech)
        assert ours.shape == (256,)
        assert abs(float(np.linalg.norm(ours)) - 1.0) < 1e-5
        assert float(ours @ theirs) >= 0.98, speaker


def test_same_speaker_is_closer_than_the_other(embedder) -> None:
    (ref_a, test_a), (ref_b, test_b) = (enrollment_audio(s) for s in sample_speakers())
    a, b = embedder.embed(ref_a), embedder.embed(ref_b)
    ta, tb = embedder.embed(test_a), embedder.embed(test_b)
    assert ta @ a > ta @ b
    assert tb @ b > tb @ a


def test_embedding_refuses_empty_input(embedder) -> None:
    with pytest.raises(ValueError):
        embedder.embed(np.zeros(0, np.float32))
