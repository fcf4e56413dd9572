"""The desktop client's window: Connect, Enroll, Speakers, Live transcript.

Screens only render view models (gui/viewmodels.py) and hand work to the network loop
(gui/client.py); results come back to the GUI thread through `Bridge`'s signal.
"""

from __future__ import annotations

import asyncio
import html
import os
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from gui import audio
from gui.client import ApiClient, ApiFailure, Connection, Worker
from gui.viewmodels import (
    Feature,
    Transcript,
    advice,
    clock,
    consent_text,
    duplicate_warning,
    explain,
    features,
    features_text,
    live_status_text,
    meter,
    speaker_rows,
)
from models.audio import SAMPLE_RATE

KEYRING_SERVICE = "scaiecho-desktop"


def load_key(url: str) -> str:
    """The key for ``url`` from the OS keyring, if one is available."""
    try:
        import keyring

        return keyring.get_password(KEYRING_SERVICE, url) or ""
    except Exception:  # no keyring backend on this machine
        return ""


def save_key(url: str, key: str) -> bool:
    """Keep the key in the OS keyring; False when there is none."""
    try:
        import keyring

        keyring.set_password(KEYRING_SERVICE, url, key)
        return True
    except Exception:
        return False


class Bridge(QObject):
    """Runs coroutines on the network loop and calls back on the GUI thread."""

    finished = Signal(object, object, object)  # callback, result, error

    def __init__(self, worker: Worker) -> None:
        super().__init__()
        self.worker = worker
        self.finished.connect(self._deliver, Qt.ConnectionType.QueuedConnection)

    def run(
        self, coro: Coroutine[Any, Any, Any], done: Callable[[Any], None], failed: Callable[[ApiFailure], None]
    ) -> None:
        """Start ``coro``; ``done(result)`` or ``failed(error)`` later, on the GUI thread."""
        future = self.worker.submit(coro)

        def settle(f: Any) -> None:
            error = f.exception()
            if error is None:
                self.finished.emit(done, f.result(), None)
            else:
                failure = error if isinstance(error, ApiFailure) else ApiFailure(None, None)
                self.finished.emit(failed, None, failure)

        future.add_done_callback(settle)

    @staticmethod
    def _deliver(callback: Callable[[Any], None], result: Any, error: Any) -> None:
        callback(error if error is not None else result)


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
        report = audio.local_preflight(samples, "reference" if self.role == "reference" else "consent")
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


class MainWindow(QMainWindow):
    """Everything a team lead needs, one tab per task."""

    def __init__(self, url: str = "", key: str = "", ca_file: str | None = None) -> None:
        super().__init__()
        self.ca_file = ca_file
        self.setWindowTitle("ScaiEcho")
        self.resize(980, 720)
        self.worker = Worker()
        self.bridge = Bridge(self.worker)
        self.client: ApiClient | None = None
        self.scopes: set[str] = set()
        self.speaker_docs: list[dict[str, Any]] = []
        self.transcript = Transcript()
        self.live_running = False
        self.tabs = QTabWidget()
        self.setCentralWidget(self.tabs)
        self._build_connect(url or os.environ.get("SCAIGRID_HOST", "http://127.0.0.1:8080"), key)
        self._build_enroll()
        self._build_speakers()
        self._build_live()
        self.apply_features(features(None), connected=False)

    # -- connect -------------------------------------------------------------------------------

    def _build_connect(self, url: str, key: str) -> None:
        page = QWidget()
        form = QFormLayout(page)
        self.url_edit = QLineEdit(url)
        self.key_edit = QLineEdit(key or os.environ.get("SCAIGRID_API_KEY", "") or load_key(url))
        self.key_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.connect_button = QPushButton("Connect")
        self.health_label = QLabel("Not connected.")
        self.health_label.setWordWrap(True)
        self.features_label = QLabel("")
        self.features_label.setWordWrap(True)
        form.addRow("Appliance URL", self.url_edit)
        form.addRow("API key", self.key_edit)
        form.addRow(self.connect_button)
        form.addRow("Health", self.health_label)
        form.addRow("This key may", self.features_label)
        self.connect_button.clicked.connect(self.connect_appliance)
        self.tabs.addTab(page, "Connect")

    def connect_appliance(self) -> None:
        """Check health and the key's scopes."""
        connection = Connection(self.url_edit.text().strip(), self.key_edit.text().strip(), self.ca_file)
        self.client = ApiClient(connection)
        self.health_label.setText("Connecting…")

        async def check() -> tuple[dict[str, Any], set[str]]:
            assert self.client is not None
            return await self.client.health(), await self.client.scopes()

        def done(result: tuple[dict[str, Any], set[str]]) -> None:
            health, scopes = result
            self.scopes = scopes
            stored = save_key(connection.url, connection.key)
            self.health_label.setText(
                f"{health.get('status')}: Redis {health.get('redis')}, {health.get('nodes_online')} node(s) online, "
                f"ASR {health.get('asr')}." + ("" if stored else " (No OS keyring here: the key is not saved.)")
            )
            self.apply_features(features(scopes), connected=True)
            if "scaiecho:enroll" in scopes:
                self.refresh_speakers()

        self.bridge.run(check(), done, lambda e: self.health_label.setText(explain(e.status, e.body, connection.url)))

    def apply_features(self, allowed: dict[str, Feature], connected: bool) -> None:
        """Enable what the key may do; say why the rest is disabled. Speaker names are on when allowed."""
        self.allowed = allowed
        for index, name in ((1, "enroll"), (2, "speakers"), (3, "live")):
            self.tabs.setTabEnabled(index, allowed[name].enabled)
            self.tabs.setTabToolTip(index, allowed[name].reason)
        self.diarize_box.setEnabled(allowed["diarize"].enabled)
        self.diarize_box.setToolTip(allowed["diarize"].reason)
        self.diarize_box.setChecked(allowed["diarize"].enabled)
        self.features_label.setText(features_text(allowed, connected))

    # -- enroll --------------------------------------------------------------------------------

    def _build_enroll(self) -> None:
        page = QWidget()
        layout = QVBoxLayout(page)
        form = QFormLayout()
        self.name_edit = QLineEdit()
        self.language_edit = QLineEdit("en")
        self.description_edit = QLineEdit()
        self.full_name_edit = QLineEdit()
        self.purpose_edit = QLineEdit("Meeting transcription with speaker names")
        self.consent_edit = QPlainTextEdit()
        self.device_combo = QComboBox()
        try:
            for index, name in audio.input_devices():
                self.device_combo.addItem(name, index)
        except Exception as exc:
            self.device_combo.addItem(f"No audio input ({exc})", None)
        if self.device_combo.count() == 0:
            self.device_combo.addItem("No microphone found: import recordings instead", None)
        for label, widget in (("Display name", self.name_edit), ("Language", self.language_edit),
                              ("Description", self.description_edit), ("Full name (consent)", self.full_name_edit),
                              ("Purpose", self.purpose_edit), ("Consent text (read aloud)", self.consent_edit),
                              ("Microphone", self.device_combo)):  # fmt: skip
            form.addRow(label, widget)
        layout.addLayout(form)
        device: Callable[[], int | None] = lambda: self.device_combo.currentData()  # noqa: E731
        self.reference_panel = RecordingPanel(
            "reference", "Speak naturally for 20-30 s in a quiet room, 20-50 cm from the microphone.", device
        )
        self.consent_panel = RecordingPanel("consent", "Read the consent text above aloud.", device)
        layout.addWidget(QLabel("Reference recording"))
        layout.addWidget(self.reference_panel)
        layout.addWidget(QLabel("Consent recording"))
        layout.addWidget(self.consent_panel)
        self.enroll_button = QPushButton("Enroll")
        self.enroll_status = QLabel("")
        self.enroll_status.setWordWrap(True)
        self.enroll_progress = QProgressBar()
        self.enroll_progress.setRange(0, 1)
        layout.addWidget(self.enroll_button)
        layout.addWidget(self.enroll_progress)
        layout.addWidget(self.enroll_status)
        self._consent_touched = False
        # No field mirrors another: the consent record holds exactly what the person typed and read.
        self.consent_edit.textChanged.connect(self._consent_edited)
        for edit in (self.full_name_edit, self.purpose_edit):
            edit.textChanged.connect(self._prefill_consent)
        self.consent_panel.changed.connect(self._consent_recorded)
        self.enroll_button.clicked.connect(self.enroll)
        self._prefill_consent()
        self.tabs.addTab(page, "Enroll")

    def _consent_edited(self) -> None:
        self._consent_touched = self.consent_edit.toPlainText() != self._prefilled
        if self.consent_panel.samples is not None and self.consent_edit.toPlainText() != self._read_aloud:
            # The recording no longer says what would be stored: it must be made again.
            self.consent_panel.clear("The consent text changed after it was recorded: record it again.")

    def _consent_recorded(self) -> None:
        self._read_aloud = self.consent_edit.toPlainText()

    _read_aloud = ""

    def _prefill_consent(self) -> None:
        if not self._consent_touched:
            self._prefilled = consent_text(self.full_name_edit.text(), self.purpose_edit.text())
            self.consent_edit.setPlainText(self._prefilled)

    _prefilled = ""

    def enroll(self) -> None:
        """Upload both recordings; then follow the status until ready."""
        if self.client is None:
            self.enroll_status.setText("Connect to an appliance first.")
            return
        reference, consent = self.reference_panel.samples, self.consent_panel.samples
        if reference is None or consent is None:
            self.enroll_status.setText("Record (or import) both the reference and the consent first.")
            return
        fields = {
            "display_name": self.name_edit.text().strip(),
            "language_primary": self.language_edit.text().strip(),
            "description": self.description_edit.text().strip(),
            "consent_user_full_name": self.full_name_edit.text().strip(),
            "consent_stated_purpose": self.purpose_edit.text().strip(),
            "consent_text": self.consent_edit.toPlainText().strip(),
        }
        self.enroll_progress.setRange(0, 0)  # busy
        self.enroll_status.setText("Uploading…")
        self.enroll_button.setEnabled(False)
        self.bridge.run(self.client.enroll(fields, reference, consent), self._enrolled, self._enroll_failed)

    def _enrolled(self, speaker: dict[str, Any]) -> None:
        self.enroll_progress.setRange(0, 1)
        self.enroll_progress.setValue(1)
        self.enroll_button.setEnabled(True)
        self.last_enrolled = speaker
        nodes = ", ".join(speaker.get("enrolled_on", [])) or "no node yet"
        warnings = [
            i for r in ("reference", "consent") for i in speaker.get("preflight", {}).get(r, {}).get("issues", [])
        ]
        self.enroll_status.setText(
            f"{speaker['display_name']} is {speaker['enrollment_status']} (on {nodes})."
            + (" " + " ".join(advice(warnings)) if warnings else "")
            + (f"\n{duplicate_warning(speaker)}" if speaker.get("possible_duplicates") else "")
        )
        self.refresh_speakers()
        if speaker["enrollment_status"] == "pending":
            QTimer.singleShot(1000, lambda: self._follow(speaker["id"]))

    def _follow(self, speaker_id: str) -> None:
        assert self.client is not None

        def seen(doc: dict[str, Any]) -> None:
            self._enrolled(doc)

        self.bridge.run(self.client.speaker(speaker_id), seen, self._enroll_failed)

    def _enroll_failed(self, error: ApiFailure) -> None:
        self.enroll_progress.setRange(0, 1)
        self.enroll_progress.setValue(0)
        self.enroll_button.setEnabled(True)
        self.enroll_status.setText(explain(error.status, error.body, self.url_edit.text()))

    last_enrolled: dict[str, Any] = {}

    # -- speakers ------------------------------------------------------------------------------

    def _build_speakers(self) -> None:
        page = QWidget()
        layout = QVBoxLayout(page)
        top = QHBoxLayout()
        self.filter_edit = QLineEdit()
        self.filter_edit.setPlaceholderText("Filter by name, language or status")
        self.refresh_button = QPushButton("Refresh")
        self.rewarm_button = QPushButton("Re-warm")
        self.delete_button = QPushButton("Delete…")
        for w in (self.filter_edit, self.refresh_button, self.rewarm_button, self.delete_button):
            top.addWidget(w)
        self.table = QTableWidget(0, 5)
        self.table.setHorizontalHeaderLabels(["Name", "Language", "Status", "Warm nodes", "Created"])
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.speakers_status = QLabel("")
        self.speakers_status.setWordWrap(True)
        self.details_label = QLabel("Select a speaker to see which nodes hold them.")
        self.details_label.setWordWrap(True)
        self.nodes_edit = QLineEdit()
        self.nodes_edit.setPlaceholderText("Re-warm on these nodes only (comma-separated; empty = every candidate)")
        layout.addLayout(top)
        layout.addWidget(self.table)
        layout.addWidget(self.details_label)
        layout.addWidget(self.nodes_edit)
        layout.addWidget(self.speakers_status)
        self.table.itemSelectionChanged.connect(self.show_details)
        self.table.itemSelectionChanged.connect(self._selection_changed)
        self._selection_changed()
        self.filter_edit.textChanged.connect(lambda _: self._fill_table())
        self.refresh_button.clicked.connect(self.refresh_speakers)
        self.rewarm_button.clicked.connect(self.rewarm_selected)
        self.delete_button.clicked.connect(self.delete_selected)
        self.tabs.addTab(page, "Speakers")

    def refresh_speakers(self) -> None:
        """Reload the list."""
        if self.client is None:
            return

        def done(docs: list[dict[str, Any]]) -> None:
            self.speaker_docs = docs
            self._fill_table()

        self.bridge.run(self.client.speakers(), done, self._speakers_failed)

    def _visible(self) -> list[dict[str, Any]]:
        needle = self.filter_edit.text()
        return [d for d in self.speaker_docs if speaker_rows([d], needle)]

    def _fill_table(self) -> None:
        rows = speaker_rows(self.speaker_docs, self.filter_edit.text())
        self.table.setRowCount(len(rows))
        for r, row in enumerate(rows):
            for c, value in enumerate(row):
                self.table.setItem(r, c, QTableWidgetItem(value))

    def selected_speaker(self) -> dict[str, Any] | None:
        """The speaker of the selected row."""
        row = self.table.currentRow()
        visible = self._visible()
        return visible[row] if 0 <= row < len(visible) else None

    def _selection_changed(self) -> None:
        chosen = bool(self.table.selectionModel().selectedRows())
        self.rewarm_button.setEnabled(chosen)
        self.delete_button.setEnabled(chosen)

    def show_details(self) -> None:
        """Warm, candidate and stale nodes of the selected speaker."""
        speaker = self.selected_speaker()
        if speaker is None or self.client is None:
            return

        def done(warm: dict[str, Any]) -> None:
            self.details_label.setText(
                f"{speaker['display_name']}: warm on {', '.join(warm['warm_node_ids']) or 'no node'}; "
                f"candidates {', '.join(warm['candidate_node_ids']) or 'none'}; "
                f"stale entries {', '.join(warm['stale_node_ids']) or 'none'}."
            )

        self.bridge.run(self.client.warm(speaker["id"]), done, self._speakers_failed)

    def rewarm_selected(self) -> None:
        """Re-warm the selected speaker on every candidate node, or on the nodes typed in."""
        speaker = self.selected_speaker()
        if speaker is None or self.client is None:
            return
        chosen = [n.strip() for n in self.nodes_edit.text().split(",") if n.strip()]

        def done(result: dict[str, Any]) -> None:
            outcome = ", ".join(
                f"{node}: {'ok' if r.get('ok') else r.get('error')}" for node, r in result.get("results", {}).items()
            )
            self.speakers_status.setText(f"Re-warm of {speaker['display_name']}: {outcome or result}")
            self.refresh_speakers()
            self.show_details()

        self.bridge.run(self.client.rewarm(speaker["id"], chosen), done, self._speakers_failed)

    def delete_selected(self) -> None:
        """Erase the selected speaker, only after the person confirms in a dialog that defaults to No.

        Takes no argument on purpose: ``clicked`` passes ``checked`` to any parameter it finds, which
        once turned a confirmation flag off and erased without asking.
        """
        speaker = self.selected_speaker()
        if speaker is None or self.client is None:
            return
        answer = QMessageBox.question(
            self,
            "Erase speaker",
            f"Erase {speaker['display_name']}? Their recordings and voice profile are destroyed for good, every "
            "node forgets them, and an audit record keeps only that the erasure happened. This cannot be undone.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No,
        )
        if answer != QMessageBox.StandardButton.Yes:
            return
        # Nothing stays selected: a second click must not erase the next person in the list.
        self.table.clearSelection()
        self.table.setCurrentCell(-1, -1)

        def done(receipt: dict[str, Any]) -> None:
            self.last_receipt = receipt
            errors = receipt.get("error_summary") or {}
            self.speakers_status.setText(
                f"Erased {speaker['display_name']}: audit id {receipt.get('audit_id')}, "
                f"{receipt.get('blob_bytes_deleted')} bytes deleted, evicted from "
                f"{', '.join(receipt.get('evicted_from', [])) or 'no node'}"
                + (f", node errors: {errors}" if errors else ", every node confirmed.")
            )
            self.refresh_speakers()

        self.bridge.run(self.client.delete(speaker["id"]), done, self._speakers_failed)

    last_receipt: dict[str, Any] = {}

    def _speakers_failed(self, error: ApiFailure) -> None:
        self.speakers_status.setText(explain(error.status, error.body, self.url_edit.text()))

    # -- live ----------------------------------------------------------------------------------

    def _build_live(self) -> None:
        page = QWidget()
        layout = QVBoxLayout(page)
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
        self.tabs.addTab(page, "Live transcript")
        self.live_file: Path | None = None

    def toggle_live(self) -> None:
        """Start or stop the live transcript."""
        if self.live_running:
            self.live_running = False
            return
        if self.client is None:
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
        assert self.client is not None
        self.transcript = Transcript()
        self.live_running = True
        self.live_button.setText("Stop")
        self._render()
        recorder = audio.Recorder(self.device_combo.currentData()) if path is None else None
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
            self.bridge.finished.emit(self._frame, frame, None)

        def ended(_: Any) -> None:
            self.live_running = False
            self.live_button.setText("Start")
            self.live_timer.stop()
            self._show_progress()

        def failed(error: ApiFailure) -> None:
            ended(None)
            self.live_status.setText(explain(error.status, error.body, self.url_edit.text()))

        self.bridge.run(self.client.stream(chunks, on_frame, self.diarize_box.isChecked()), ended, failed)

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
        for s in self.transcript.segments:
            label = s.get("speaker_label")
            who = f"<b style='color:{self.transcript.colour(label)}'>{html.escape(label)}:</b> " if label else ""
            when = f"<span style='color:#777777'>[{clock(float(s.get('start', 0)))}]</span> "
            parts.append(f"<p>{when}{who}{html.escape(s['text'])}</p>")
        if self.transcript.partial:
            parts.append(f"<p style='color:#999999'>{html.escape(self.transcript.partial)}</p>")
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

    def closeEvent(self, event: Any) -> None:
        """Stop streaming and the network loop."""
        self.live_running = False
        self.worker.stop()
        super().closeEvent(event)
