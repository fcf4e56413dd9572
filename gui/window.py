"""The desktop client's window: one tab per task (gui/tabs/), wired together here.

Tabs only render view models (gui/viewmodels.py) and hand work to the network loop
(gui/client.py) through the shared `DesktopContext`; results come back to the GUI thread
through `Bridge`'s signal.
"""

from __future__ import annotations

import os
from typing import Any

from PySide6.QtWidgets import QMainWindow, QTabWidget

from gui.bridge import Bridge, DesktopContext
from gui.client import Worker
from gui.tabs.connect import ConnectTab
from gui.tabs.enroll import EnrollTab
from gui.tabs.live import LiveTab
from gui.tabs.speakers import SpeakersTab
from gui.viewmodels import Feature, features, features_text


class MainWindow(QMainWindow):
    """Everything a team lead needs, one tab per task."""

    def __init__(self, url: str = "", key: str = "", ca_file: str | None = None) -> None:
        super().__init__()
        self.setWindowTitle("ScaiEcho")
        self.resize(980, 720)
        self.worker = Worker()
        self.ctx = DesktopContext(Bridge(self.worker))
        self.connect_tab = ConnectTab(self.ctx, url or os.environ.get("SCAIGRID_HOST", "http://127.0.0.1:8080"), key,
                                      ca_file)  # fmt: skip
        self.enroll_tab = EnrollTab(self.ctx)
        self.speakers_tab = SpeakersTab(self.ctx, self.enroll_tab.device)
        self.live_tab = LiveTab(self.ctx, self.enroll_tab.device)
        self.tabs = QTabWidget()
        for tab, title in ((self.connect_tab, "Connect"), (self.enroll_tab, "Enroll"),
                           (self.speakers_tab, "Speakers"), (self.live_tab, "Live transcript")):  # fmt: skip
            self.tabs.addTab(tab, title)
        self.setCentralWidget(self.tabs)
        self.connect_tab.connected.connect(self._connected)
        self.enroll_tab.enrolled.connect(self.speakers_tab.refresh_speakers)
        self.apply_features(features(None), connected=False)

    def _connected(self, scopes: set[str]) -> None:
        self.apply_features(features(scopes), connected=True)
        if features(scopes)["speakers"].enabled:
            self.speakers_tab.refresh_speakers()

    def apply_features(self, allowed: dict[str, Feature], connected: bool) -> None:
        """Enable what the key may do; say why the rest is disabled. Speaker names are on when allowed."""
        self.allowed = allowed
        for index, name in ((1, "enroll"), (2, "speakers"), (3, "live")):
            self.tabs.setTabEnabled(index, allowed[name].enabled)
            self.tabs.setTabToolTip(index, allowed[name].reason)
        diarize = self.live_tab.diarize_box
        diarize.setEnabled(allowed["diarize"].enabled)
        diarize.setToolTip(allowed["diarize"].reason)
        diarize.setChecked(allowed["diarize"].enabled)
        self.connect_tab.features_label.setText(features_text(allowed, connected))

    def closeEvent(self, event: Any) -> None:
        """Stop streaming and the network loop."""
        self.live_tab.live_running = False
        self.worker.stop()
        super().closeEvent(event)
