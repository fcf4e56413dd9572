"""The Connect tab: appliance URL and API key, health, and what the key may do."""

from __future__ import annotations

import os
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFormLayout, QLabel, QLineEdit, QPushButton, QWidget

from gui.bridge import DesktopContext
from gui.client import ApiClient, Connection
from gui.credentials import load_key, save_key
from gui.viewmodels import explain


class ConnectTab(QWidget):
    """Where the appliance is and which key to use."""

    #: Connected: the key's scopes.
    connected = Signal(object)

    def __init__(self, ctx: DesktopContext, url: str, key: str, ca_file: str | None) -> None:
        super().__init__()
        self.ctx = ctx
        self.ca_file = ca_file
        form = QFormLayout(self)
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

    def connect_appliance(self) -> None:
        """Check health and the key's scopes."""
        connection = Connection(self.url_edit.text().strip(), self.key_edit.text().strip(), self.ca_file)
        self.ctx.client = ApiClient(connection)
        self.ctx.url = connection.url
        self.health_label.setText("Connecting…")

        async def check() -> tuple[dict[str, Any], set[str]]:
            assert self.ctx.client is not None
            return await self.ctx.client.health(), await self.ctx.client.scopes()

        def done(result: tuple[dict[str, Any], set[str]]) -> None:
            health, scopes = result
            stored = save_key(connection.url, connection.key)
            self.health_label.setText(
                f"{health.get('status')}: Redis {health.get('redis')}, {health.get('nodes_online')} node(s) online, "
                f"ASR {health.get('asr')}." + ("" if stored else " (No OS keyring here: the key is not saved.)")
            )
            self.connected.emit(scopes)

        self.ctx.bridge.run(
            check(), done, lambda e: self.health_label.setText(explain(e.status, e.body, connection.url))
        )
