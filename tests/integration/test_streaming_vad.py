"""Streaming Silero VAD equals one offline pass, whatever the piece sizes."""

from __future__ import annotations

import numpy as np
from faster_whisper.vad import get_vad_model

from models.vad import CHUNK, PhraseSegmenter, StreamingVad, speech_regions
from tests.support import sample_audio


def test_pieces_of_any_size_give_the_offline_probabilities() -> None:
    audio = sample_audio()
    usable = len(audio) // CHUNK * CHUNK
    offline = np.asarray(get_vad_model()(audio[:usable])).reshape(-1)
    rng = np.random.default_rng(3)
    vad = StreamingVad()
    streamed = []
    position = 0
    while position < usable:
        size = int(rng.integers(1, 9000))
        streamed.append(vad.feed(audio[position : min(position + size, usable)]))
        position += size
    online = np.concatenate(streamed)
    assert online.shape == offline.shape
    assert np.allclose(online, offline, atol=1e-5)


def test_phrases_cover_the_speech_that_offline_vad_finds() -> None:
    audio = sample_audio()
    vad, seg = StreamingVad(), PhraseSegmenter()
    phrases = []
    for start in range(0, len(audio), 1600):  # 100 ms pieces, as a live client sends them
        phrases += seg.push(vad.feed(audio[start : start + 1600]))
    phrases += seg.flush()
    covered = np.zeros(len(audio), bool)
    for p in phrases:
        covered[p.start : p.end] = True
    speech = np.zeros(len(audio), bool)
    for s, e in speech_regions(audio):
        speech[s:e] = True
    assert len(phrases) >= 3
    assert covered[speech].mean() > 0.95
