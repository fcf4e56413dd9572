"""The Live transcript tab: the microphone or a file in real time, with names, times and progress."""

from __future__ import annotations

import asyncio
import html
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from gui import audio
from gui.bridge import DesktopContext
from gui.client import ApiFailure
from gui.viewmodels import Transcript, clock, explain, live_status_text
from models.audio import SAMPLE_RATE


class LiveTab(QWidget):
    """Watch a live transcript with speaker names."""

    def __init__(self, ctx: DesktopContext, device: Callable[[], int | None]) -> None:
        super().__init__()
        self.ctx = ctx
        self.device = device
        self.transcript = Transcript()
        self.live_running = False
        layout = QVBoxLayout(self)
        top = QHBoxLayout()
        self.source_combo = QComboBox()
        self.source_combo.addItem("Microphone", "mic")
        self.source_combo.addItem("File, played in real time…", "file")
        self.diarize_box = QCheckBox("Speaker names (diarize)")
        self.live_button = QPushButton("Start")
        self.save_button = QPushButton("Save…")
        self.backend_label = QLabel("")
        for w in (self.source_combo, self.diarize_box, self.live_button, self.save_button, self.backend_label):
            top.addWidget(w)
        self.transcript_view = QTextBrowser()
        self.live_progress = QProgressBar()
        self.live_progress.setVisible(False)
        self.live_status = QLabel("")
        self.live_status.setWordWrap(True)
        layout.addLayout(top)
        layout.addWidget(self.transcript_view)
        layout.addWidget(self.live_progress)
        layout.addWidget(self.live_status)
        self.live_timer = QTimer(self)
        self.live_timer.setInterval(250)
        self.live_timer.timeout.connect(self._show_progress)
        self._live_started = 0.0
        self._live_total: float | None = None
        self.live_button.clicked.connect(self.toggle_live)
        self.save_button.clicked.connect(self._save)
        self.live_file: Path | None = None

    def toggle_live(self) -> None:
        """Start or stop the live transcript."""
        if self.live_running:
            self.live_running = False
            return
        if self.ctx.client is None:
            return
        source = self.source_combo.currentData()
        if source == "file" and self.live_file is None:
            path, _ = QFileDialog.getOpenFileName(self, "Audio to play", "", "Audio (*.wav *.mp3 *.flac *.ogg *.m4a)")
            if not path:
                return
            self.live_file = Path(path)
        self.start_live(self.live_file if source == "file" else None)

    def start_live(self, path: Path | None) -> None:
        """Stream the microphone (``path`` None) or a file in real time."""
        assert self.ctx.client is not None
        self.transcript = Transcript()
        self.live_running = True
        self.live_button.setText("Stop")
        self._render()
        recorder = audio.Recorder(self.device()) if path is None else None
        samples = audio.load_file(path.read_bytes()) if path is not None else None
        position = 0
        self._live_started = time.monotonic()
        self._live_total = len(samples) / SAMPLE_RATE if samples is not None else None
        self.live_progress.setVisible(self._live_total is not None)
        self.live_progress.setRange(0, 1000)
        self.live_progress.setValue(0)
        self.live_timer.start()
        self._show_progress()

        async def chunks() -> np.ndarray | None:
            nonlocal position
            if not self.live_running:
                if recorder is not None and recorder.recording:
                    recorder.stop()
                return None
            if recorder is not None:
                if not recorder.recording:
                    recorder.start()
                await asyncio.sleep(0.05)
                return recorder.drain()
            assert samples is not None
            if position >= len(samples):
                return None
            block = samples[position : position + SAMPLE_RATE // 10]
            position += len(block)
            await asyncio.sleep(0.1)
            return block

        def on_frame(frame: dict[str, Any]) -> None:  # network thread: hand over to the GUI thread
            self.ctx.bridge.finished.emit(self._frame, frame, None)

        def ended(_: Any) -> None:
            self.live_running = False
            self.live_button.setText("Start")
            self.live_timer.stop()
            self._show_progress()

        def failed(error: ApiFailure) -> None:
            ended(None)
            self.live_status.setText(explain(error.status, error.body, self.ctx.url))

        self.ctx.bridge.run(self.ctx.client.stream(chunks, on_frame, self.diarize_box.isChecked()), ended, failed)

    def _show_progress(self) -> None:
        elapsed = time.monotonic() - self._live_started
        if self._live_total:
            done = self.transcript.done or not self.live_running
            self.live_progress.setValue(1000 if done else min(1000, int(1000 * elapsed / self._live_total)))
        if not self.transcript.errors:
            self.live_status.setText(live_status_text(elapsed, self._live_total, self.transcript))

    def _frame(self, frame: dict[str, Any]) -> None:
        self.transcript.apply(frame)
        if frame.get("type") == "error":
            self.live_status.setText(self.transcript.errors[-1])
        elif frame.get("type") == "done":
            self._show_progress()
        self._render()

    def _render(self) -> None:
        parts = []
        for line in self.transcript.lines():
            label = line.label
            who = f"<b style='color:{self.transcript.colour(label)}'>{html.escape(label)}:</b> " if label else ""
            when = f"<span style='color:#777777'>[{clock(line.start)}]</span> "
            parts.append(f"<p>{when}{who}{html.escape(line.text)}</p>")
        if self.transcript.partial:
            label = self.transcript.partial_label
            who = f"{html.escape(label)}: " if label else ""
            parts.append(f"<p style='color:#999999'>{who}{html.escape(self.transcript.partial)}</p>")
        self.transcript_view.setHtml("".join(parts))
        self.backend_label.setText(f"Backend {self.transcript.backend}" if self.transcript.backend else "")

    def _save(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Save transcript", "transcript.txt", "Text (*.txt);;SubRip (*.srt);;JSON (*.json)"
        )
        if path:
            self.save_transcript(Path(path))

    def save_transcript(self, path: Path) -> None:
        """Write the transcript as TXT, SRT or JSON by the file's suffix."""
        writers = {".srt": self.transcript.to_srt, ".json": self.transcript.to_json}
        path.write_text(writers.get(path.suffix.lower(), self.transcript.to_txt)(), encoding="utf-8")
