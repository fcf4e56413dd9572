"""The Speakers tab: the list with search, where each is warm, re-warm, another recording for a
profile, and erasure with a receipt."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from gui.bridge import DesktopContext
from gui.client import ApiFailure
from gui.recording import RecordingPanel
from gui.viewmodels import explain, speaker_rows


class SpeakersTab(QWidget):
    """Manage the tenant's speakers."""

    def __init__(self, ctx: DesktopContext, device: Callable[[], int | None] = lambda: None) -> None:
        super().__init__()
        self.ctx = ctx
        self.speaker_docs: list[dict[str, Any]] = []
        layout = QVBoxLayout(self)
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
        # another recording of the selected person: a profile from several recordings names them better
        self.more_panel = RecordingPanel(
            "another reference", "Another 20-30 s of the selected person speaking (another day or room helps).", device
        )
        self.add_reference_button = QPushButton("Add to profile")
        layout.addWidget(self.more_panel)
        layout.addWidget(self.add_reference_button)
        layout.addWidget(self.speakers_status)
        self.table.itemSelectionChanged.connect(self.show_details)
        self.table.itemSelectionChanged.connect(self._selection_changed)
        self._selection_changed()
        self.filter_edit.textChanged.connect(lambda _: self._fill_table())
        self.refresh_button.clicked.connect(self.refresh_speakers)
        self.rewarm_button.clicked.connect(self.rewarm_selected)
        self.delete_button.clicked.connect(self.delete_selected)
        self.add_reference_button.clicked.connect(self.add_reference)
        self.more_panel.changed.connect(self._selection_changed)

    def refresh_speakers(self) -> None:
        """Reload the list."""
        if self.ctx.client is None:
            return

        def done(docs: list[dict[str, Any]]) -> None:
            self.speaker_docs = docs
            self._fill_table()

        self.ctx.bridge.run(self.ctx.client.speakers(), done, self._speakers_failed)

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
        self.add_reference_button.setEnabled(chosen and self.more_panel.samples is not None and self.more_panel.passed)

    def show_details(self) -> None:
        """Warm, candidate and stale nodes of the selected speaker."""
        speaker = self.selected_speaker()
        if speaker is None or self.ctx.client is None:
            return

        def done(warm: dict[str, Any]) -> None:
            self.details_label.setText(
                f"{speaker['display_name']}: warm on {', '.join(warm['warm_node_ids']) or 'no node'}; "
                f"candidates {', '.join(warm['candidate_node_ids']) or 'none'}; "
                f"stale entries {', '.join(warm['stale_node_ids']) or 'none'}."
            )

        self.ctx.bridge.run(self.ctx.client.warm(speaker["id"]), done, self._speakers_failed)

    def rewarm_selected(self) -> None:
        """Re-warm the selected speaker on every candidate node, or on the nodes typed in."""
        speaker = self.selected_speaker()
        if speaker is None or self.ctx.client is None:
            return
        chosen = [n.strip() for n in self.nodes_edit.text().split(",") if n.strip()]

        def done(result: dict[str, Any]) -> None:
            outcome = ", ".join(
                f"{node}: {'ok' if r.get('ok') else r.get('error')}" for node, r in result.get("results", {}).items()
            )
            self.speakers_status.setText(f"Re-warm of {speaker['display_name']}: {outcome or result}")
            self.refresh_speakers()
            self.show_details()

        self.ctx.bridge.run(self.ctx.client.rewarm(speaker["id"], chosen), done, self._speakers_failed)

    def add_reference(self) -> None:
        """Send the new recording to the selected speaker's profile; the appliance checks it is their voice."""
        speaker = self.selected_speaker()
        samples = self.more_panel.samples
        if speaker is None or samples is None or self.ctx.client is None:
            return
        self.speakers_status.setText(f"Adding the recording to {speaker['display_name']}…")

        def done(doc: dict[str, Any]) -> None:
            added = doc.get("added_reference") or {}
            self.speakers_status.setText(
                f"Added to {doc['display_name']} (same voice, score {float(added.get('speaker_score', 0)):.2f}): "
                f"{doc.get('note') or ''}."
            )
            self.more_panel.clear("Added. Record another one for another speaker, or the same one again.")
            self._selection_changed()
            self.refresh_speakers()

        self.ctx.bridge.run(self.ctx.client.add_reference(speaker["id"], samples), done, self._speakers_failed)

    def delete_selected(self) -> None:
        """Erase the selected speaker, only after the person confirms in a dialog that defaults to No.

        Takes no argument on purpose: ``clicked`` passes ``checked`` to any parameter it finds, which
        once turned a confirmation flag off and erased without asking.
        """
        speaker = self.selected_speaker()
        if speaker is None or self.ctx.client is None:
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

        self.ctx.bridge.run(self.ctx.client.delete(speaker["id"]), done, self._speakers_failed)

    last_receipt: dict[str, Any] = {}

    def _speakers_failed(self, error: ApiFailure) -> None:
        self.speakers_status.setText(explain(error.status, error.body, self.ctx.url))
