"""The Enroll tab: metadata, consent text, both recordings with a local preflight, upload."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from gui import audio
from gui.bridge import DesktopContext
from gui.client import ApiFailure
from gui.recording import RecordingPanel
from gui.viewmodels import advice, consent_summary, consent_text, duplicate_warning, explain


class EnrollTab(QWidget):
    """Enroll a speaker with recorded consent."""

    #: An enrollment finished (the speakers list is out of date).
    enrolled = Signal()

    def __init__(self, ctx: DesktopContext) -> None:
        super().__init__()
        self.ctx = ctx
        layout = QVBoxLayout(self)
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
        device: Callable[[], int | None] = lambda: self.device()  # noqa: E731
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

    def device(self) -> int | None:
        """The microphone picked (None: the system default)."""
        return self.device_combo.currentData()

    def enroll(self) -> None:
        """Upload both recordings; then follow the status until ready."""
        if self.ctx.client is None:
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
        self.ctx.bridge.run(self.ctx.client.enroll(fields, reference, consent), self._enrolled, self._enroll_failed)

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
            + (f"\n{summary}" if (summary := consent_summary(speaker)) else "")
        )
        self.enrolled.emit()
        if speaker["enrollment_status"] == "pending":
            QTimer.singleShot(1000, lambda: self._follow(speaker["id"]))

    def _follow(self, speaker_id: str) -> None:
        assert self.ctx.client is not None

        def seen(doc: dict[str, Any]) -> None:
            self._enrolled(doc)

        self.ctx.bridge.run(self.ctx.client.speaker(speaker_id), seen, self._enroll_failed)

    def _enroll_failed(self, error: ApiFailure) -> None:
        self.enroll_progress.setRange(0, 1)
        self.enroll_progress.setValue(0)
        self.enroll_button.setEnabled(True)
        self.enroll_status.setText(explain(error.status, error.body, self.ctx.url))

    last_enrolled: dict[str, Any] = {}
