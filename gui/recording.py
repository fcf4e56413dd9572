"""A recording panel: record with a level meter and elapsed time, play back, re-record or import a file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout, QWidget

from gui import audio
from gui.viewmodels import advice, meter
from models.audio import SAMPLE_RATE


class RecordingPanel(QWidget):
    """Record (with level meter and elapsed time), play back, re-record, or import a file."""

    changed = Signal()

    def __init__(self, role: str, guidance: str, device: Callable[[], int | None]) -> None:
        super().__init__()
        self.role = role
        self.device = device
        self.samples: np.ndarray | None = None
        self.recorder: audio.Recorder | None = None
        self.record_button = QPushButton(f"Record {role}")
        self.play_button = QPushButton("Play")
        self.import_button = QPushButton("Import file…")
        self.level = QProgressBar()
        self.level.setRange(-60, 0)
        self.show_level(None)
        self.status = QLabel(guidance)
        self.status.setWordWrap(True)
        row = QHBoxLayout()
        for w in (self.record_button, self.play_button, self.import_button):
            row.addWidget(w)
        layout = QVBoxLayout(self)
        layout.addLayout(row)
        layout.addWidget(self.level)
        layout.addWidget(self.status)
        self.timer = QTimer(self)
        self.timer.setInterval(50)
        self.timer.timeout.connect(self._tick)
        self.record_button.clicked.connect(self.toggle)
        self.play_button.clicked.connect(lambda: self.samples is not None and audio.play(self.samples))
        self.import_button.clicked.connect(self._import)
        self.play_button.setEnabled(False)

    def toggle(self) -> None:
        """Start or stop recording."""
        if self.recorder is None:
            try:
                self.recorder = audio.Recorder(self.device())
                self.recorder.start()
            except Exception as exc:
                self.recorder = None
                self.status.setText(f"The microphone could not be opened: {exc}")
                return
            self.record_button.setText("Stop")
            self.loudest = audio.SILENCE_DBFS
            self.timer.start()
        else:
            self.timer.stop()
            self.set_samples(self.recorder.stop())
            self.recorder = None
            self.show_level(None)
            self.record_button.setText(f"Re-record {self.role}")

    def _tick(self) -> None:
        if self.recorder is not None:
            self.recorder.drain()
            self.show_level(self.recorder.level)
            self.loudest = max(self.loudest, self.recorder.level)
            self.status.setText(f"Recording… {self.recorder.elapsed_s:.0f} s")

    def show_level(self, level_dbfs: float | None) -> None:
        """Paint the meter: empty with "no signal" when idle or silent."""
        value, text = meter(level_dbfs, self.level.minimum())
        self.level.setValue(value)
        self.level.setFormat(text)

    def _import(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, f"Import the {self.role}", "", "Audio (*.wav *.mp3 *.flac *.ogg *.m4a)"
        )
        if path:
            self.import_path(Path(path))

    def import_path(self, path: Path) -> None:
        """Use a file instead of a recording."""
        try:
            self.set_samples(audio.load_file(path.read_bytes()))
        except Exception as exc:
            self.status.setText(f"{path.name} cannot be read as audio: {exc}")

    def set_samples(self, samples: np.ndarray) -> None:
        """A new take: run the local preflight on it."""
        self.samples = samples
        self.play_button.setEnabled(len(samples) > 0)
        report = audio.local_preflight(samples, "reference" if "reference" in self.role else "consent")
        issues = [{"code": i.code, "message": i.message} for i in report.issues]
        verdict = "Ready to upload." if report.passed else "Not good enough yet."
        seconds = len(samples) / SAMPLE_RATE
        self.status.setText(f"{seconds:.1f} s recorded, {report.metrics.speech_s:.1f} s of speech. {verdict} "
                            + " ".join(advice(issues)))  # fmt: skip
        self.passed = report.passed
        self.changed.emit()

    def clear(self, why: str) -> None:
        """Drop the take (it no longer fits the form) and say why."""
        self.samples = None
        self.passed = False
        self.play_button.setEnabled(False)
        self.record_button.setText(f"Record {self.role}")
        self.status.setText(why)

    passed = False
    #: Loudest block of the take being recorded, dBFS (what the meter showed at its highest).
    loudest = audio.SILENCE_DBFS
