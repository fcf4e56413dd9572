"""The GE2E speaker encoder (resemblyzer's weights) as a pyannote.audio ``Model``.

Heavy module: imports torch, torchaudio and pyannote.audio. Only the node process and the
benchmarks import it; the edge server, the GUI and the unit tests never do.
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import Any

# pyannote.audio 4 ships opt-out telemetry; an on-prem box must never phone home.
os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch
import torchaudio.functional
from pyannote.audio import Model
from pyannote.audio.core.task import Problem, Resolution, Specifications
from torch import nn

SAMPLE_RATE = 16000
#: GE2E's own front end: 25 ms Hann windows every 10 ms, 40 Slaney mel bands, power spectrum.
N_FFT = 400
HOP = 160
N_MELS = 40
#: GE2E was trained on utterances whose level was raised (never lowered) to -30 dBFS.
TARGET_DBFS = -30.0
#: GE2E's partial utterances: 160 frames = 1.6 s.
WINDOW_S = 1.6
STEP_S = 0.8


def resemblyzer_weights() -> Path:
    """Path of ``pretrained.pt`` inside the installed ``resemblyzer`` package."""
    import importlib.util

    spec = importlib.util.find_spec("resemblyzer")
    if spec is None or spec.origin is None:
        raise RuntimeError("the resemblyzer package is not installed; it ships the GE2E weights")
    return Path(spec.origin).parent / "pretrained.pt"


class GE2E(Model):
    """3-layer LSTM GE2E encoder: (batch, 1, samples) float32 at 16 kHz -> (batch, 256) unit vectors."""

    window: torch.Tensor
    fbanks: torch.Tensor

    def __init__(self, sample_rate: int = SAMPLE_RATE, num_channels: int = 1) -> None:
        super().__init__(sample_rate=sample_rate, num_channels=num_channels)
        self.lstm = nn.LSTM(N_MELS, 256, 3, batch_first=True)
        self.linear = nn.Linear(256, 256)
        self.relu = nn.ReLU()
        self.register_buffer("window", torch.hann_window(N_FFT, periodic=True), persistent=False)
        fbanks = torchaudio.functional.melscale_fbanks(
            n_freqs=N_FFT // 2 + 1,
            f_min=0.0,
            f_max=sample_rate / 2,
            n_mels=N_MELS,
            sample_rate=sample_rate,
            norm="slaney",
            mel_scale="slaney",
        )
        self.register_buffer("fbanks", fbanks, persistent=False)
        self.specifications = Specifications(
            problem=Problem.REPRESENTATION, resolution=Resolution.CHUNK, duration=WINDOW_S
        )

    @cached_property
    def dimension(self) -> int:
        """Size of one embedding."""
        return 256

    def num_frames(self, num_samples: int) -> int:
        """Mel frames computed for ``num_samples`` samples (centred STFT)."""
        return 1 + num_samples // HOP

    def receptive_field_size(self, num_frames: int = 1) -> int:
        """Samples seen by ``num_frames`` consecutive mel frames."""
        return N_FFT + (num_frames - 1) * HOP

    def receptive_field_center(self, frame: int = 0) -> int:
        """Sample at the centre of mel frame ``frame``."""
        return frame * HOP

    def mel(self, waveforms: torch.Tensor) -> torch.Tensor:
        """(batch, samples) -> (batch, frames, 40) mel power spectrogram, librosa-compatible."""
        spec = torch.stft(
            waveforms,
            n_fft=N_FFT,
            hop_length=HOP,
            window=self.window,
            center=True,
            pad_mode="constant",
            return_complex=True,
        )
        power = spec.abs() ** 2  # (batch, freqs, frames)
        return torch.matmul(power.transpose(1, 2), self.fbanks)

    def forward(self, waveforms: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        """(batch, 1, samples) float32 at 16 kHz -> (batch, 256) L2-normalised embeddings."""
        x = waveforms[:, 0, :]
        mels = self.mel(x)[:, : int(WINDOW_S * SAMPLE_RATE) // HOP, :]
        _, (hidden, _) = self.lstm(mels)
        raw = self.relu(self.linear(hidden[-1]))
        return raw / raw.norm(dim=1, keepdim=True).clamp_min(1e-12)

    @classmethod
    def from_resemblyzer(cls, weights: Path | None = None) -> GE2E:
        """Build the model and load resemblyzer's ``pretrained.pt`` (or another GE2E state dict)."""
        model = cls()
        checkpoint = torch.load(weights or resemblyzer_weights(), map_location="cpu")
        state = {k: v for k, v in checkpoint["model_state"].items() if k.split(".")[0] in ("lstm", "linear")}
        model.load_state_dict(state, strict=True)
        model.eval()
        return model
