"""The desktop client against `scaiecho-appliance up`, offscreen with pytest-qt, recording through
a real PortAudio device: ALSA's `file` plugin playing one sample speaker's speech as a microphone.

From nothing enrolled to a live transcript with the enrolled name, then erasure with its receipt.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import aiohttp
import numpy as np
import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget
from pytestqt.qtbot import QtBot

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from tests.api_client import enroll
from tests.appliance_process import Appliance

if TYPE_CHECKING:
    from gui.recording import RecordingPanel
from tests.support import SAMPLE_RATE, enrollment_audio, free_port, sample_dir, sample_speakers

ASOUNDRC = """pcm.fakemic {{
    type file
    slave.pcm "null"
    file "/dev/null"
    infile "{infile}"
    format "raw"
}}
"""


@pytest.fixture(scope="module")
def fake_mic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A capture device `fakemic` that plays the first sample speaker; HOME points at its .asoundrc.

    ALSA reads ~/.asoundrc when PortAudio starts, i.e. when sounddevice is first imported, which
    nothing in the test session does before this module.
    """
    home = tmp_path_factory.mktemp("mic-home")
    reference, _ = enrollment_audio(sample_speakers()[0])
    (np.clip(reference, -1, 1) * 32767).astype("<i2").tofile(home / "speech.raw")
    (home / ".asoundrc").write_text(ASOUNDRC.format(infile=home / "speech.raw"))
    old_home = os.environ.get("HOME")
    os.environ["HOME"] = str(home)
    yield home
    if old_home is not None:
        os.environ["HOME"] = old_home


def click(qtbot: QtBot, button: QWidget) -> None:
    """A person's click: the mouse on the real widget."""
    assert button.isEnabled(), button
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def answer_next_dialog(choice: QMessageBox.StandardButton) -> list[str]:
    """Click ``choice`` in the next modal message box once it shows; returns what it said."""
    said: list[str] = []

    def answer() -> None:
        box = QApplication.activeModalWidget()
        if not isinstance(box, QMessageBox):
            QTimer.singleShot(50, answer)
            return
        said.append(box.text())
        button = box.button(choice)
        assert button is not None
        button.click()

    QTimer.singleShot(50, answer)
    return said


def record(qtbot: QtBot, panel: RecordingPanel, seconds: float) -> None:
    click(qtbot, panel.record_button)
    assert panel.recorder is not None, panel.status.text()
    qtbot.wait(int(seconds * 1000))
    assert panel.loudest > -40  # the level meter showed speech
    click(qtbot, panel.record_button)
    assert panel.samples is not None


def test_nothing_enrolled_to_a_live_transcript_with_the_name(
    qtbot: QtBot, appliance: Appliance, fake_mic: Path
) -> None:
    from gui.window import MainWindow

    window = MainWindow(url=appliance.url, key=appliance.key)
    connect_tab, enroll_tab = window.connect_tab, window.enroll_tab
    speakers_tab, live_tab = window.speakers_tab, window.live_tab
    qtbot.addWidget(window)
    window.show()
    click(qtbot, connect_tab.connect_button)
    qtbot.waitUntil(
        lambda: window.tabs.isTabEnabled(1) and "node(s) online" in connect_tab.health_label.text(),
        timeout=60_000,
    )
    assert live_tab.diarize_box.isEnabled()

    # enroll: metadata typed field by field (no field mirrors another), consent text prefilled
    qtbot.keyClicks(enroll_tab.name_edit, "Caller 90")
    assert enroll_tab.full_name_edit.text() == ""
    qtbot.keyClicks(enroll_tab.full_name_edit, "Caller Ninety Example")
    assert enroll_tab.name_edit.text() == "Caller 90"
    assert enroll_tab.consent_edit.toPlainText().startswith("I, Caller Ninety Example, consent")
    index = enroll_tab.device_combo.findText("fakemic")
    assert index >= 0, [enroll_tab.device_combo.itemText(i) for i in range(enroll_tab.device_combo.count())]
    enroll_tab.device_combo.setCurrentIndex(index)
    reference_s = len(enrollment_audio(sample_speakers()[0])[0]) / SAMPLE_RATE
    record(qtbot, enroll_tab.reference_panel, reference_s)
    assert enroll_tab.reference_panel.passed, enroll_tab.reference_panel.status.text()
    recorded = enroll_tab.reference_panel.samples
    assert recorded is not None and abs(len(recorded) / SAMPLE_RATE - reference_s) < 1.0
    record(qtbot, enroll_tab.consent_panel, 4.0)
    # a consent text edited after its recording makes the recording stale: it must be made again
    qtbot.keyClicks(enroll_tab.consent_edit, " Thanks.")
    assert enroll_tab.consent_panel.samples is None and "record it again" in enroll_tab.consent_panel.status.text()
    record(qtbot, enroll_tab.consent_panel, 4.0)
    shown = enroll_tab.consent_edit.toPlainText().strip()  # the server trims surrounding white space
    # the fake microphone plays the caller's call, not the consent statement: the appliance
    # refuses it (enforce, the default) and the client says what to redo
    click(qtbot, enroll_tab.enroll_button)
    qtbot.waitUntil(lambda: enroll_tab.enroll_status.text() != "Uploading…", timeout=60_000)
    refused = enroll_tab.enroll_status.text()
    # the words are always wrong; 4 s of phone speech may also score under the voice threshold, and
    # the voice is checked first: either way the person is told to record the consent again
    assert "ecord the consent again" in refused, refused
    assert appliance.get_json("/speakers")[1]["data"] == []
    # an admin who accepts such consent records for now sets the tenant's checks to warn
    assert appliance.get_json("/policy", "PUT", {"consent_checks": "warn"})[0] == 200
    click(qtbot, enroll_tab.enroll_button)
    qtbot.waitUntil(lambda: "Caller 90 is ready" in enroll_tab.enroll_status.text(), timeout=60_000)
    assert "Consent NOT verified (enrolled under the warn policy)" in enroll_tab.enroll_status.text()
    consents = appliance.get_json("/audit/consents")[1]["data"]
    assert [(c["user_full_name"], c["consent_text"]) for c in consents] == [("Caller Ninety Example", shown)]

    # the speakers list updates
    qtbot.waitUntil(lambda: speakers_tab.table.rowCount() == 1, timeout=10_000)
    cells = [speakers_tab.table.item(0, c) for c in (0, 2)]
    assert [c.text() if c else None for c in cells] == ["Caller 90", "ready"]

    # details: where the speaker is warm; re-warm on a chosen node
    speakers_tab.table.selectRow(0)
    qtbot.waitUntil(lambda: "warm on node-1, node-2" in speakers_tab.details_label.text(), timeout=10_000)
    speakers_tab.nodes_edit.setText("node-2")
    click(qtbot, speakers_tab.rewarm_button)
    qtbot.waitUntil(lambda: "Re-warm of Caller 90: node-2: ok" in speakers_tab.speakers_status.text(), timeout=20_000)

    # another recording of the same person joins the profile (the appliance checks the voice)
    assert not speakers_tab.add_reference_button.isEnabled()
    record(qtbot, speakers_tab.more_panel, 10.0)
    click(qtbot, speakers_tab.add_reference_button)
    qtbot.waitUntil(lambda: "Added to Caller 90" in speakers_tab.speakers_status.text(), timeout=60_000)
    assert "embedded from 2 recordings" in speakers_tab.speakers_status.text()

    # live transcript of the sample call, played in real time, with names
    assert live_tab.diarize_box.isChecked()  # speaker names are on by default when the key allows them
    window.tabs.setCurrentIndex(3)
    live_tab.source_combo.setCurrentIndex(live_tab.source_combo.findData("file"))
    live_tab.live_file = sample_dir() / "sample.wav"  # what the file dialog would return
    click(qtbot, live_tab.live_button)
    qtbot.waitUntil(lambda: "Playing the file in real time: 0:0" in live_tab.live_status.text(), timeout=10_000)
    qtbot.waitUntil(lambda: live_tab.transcript.done, timeout=120_000)
    qtbot.waitUntil(lambda: live_tab.live_status.text().startswith("Finished:"), timeout=5_000)
    assert live_tab.live_progress.value() == live_tab.live_progress.maximum()
    assert "[0:0" in live_tab.transcript_view.toPlainText()  # timestamps beside the text
    labels = {s.speaker_label for s in live_tab.transcript.segments}
    assert "Caller 90" in labels and live_tab.transcript.backend == "A"
    assert "Caller 90:" in live_tab.transcript_view.toPlainText()
    saved = fake_mic / "transcript.srt"
    live_tab.save_transcript(saved)
    assert "Caller 90: " in saved.read_text()

    # erasure: Delete asks first; "No" keeps the speaker, "Yes" erases exactly the one selected
    other = asyncio.run(enroll_over_http(appliance, "Caller 91"))
    click(qtbot, speakers_tab.refresh_button)
    qtbot.waitUntil(lambda: speakers_tab.table.rowCount() == 2, timeout=10_000)
    names = [speakers_tab.table.item(r, 0).text() for r in range(2)]  # type: ignore[union-attr]
    speakers_tab.table.selectRow(names.index("Caller 90"))
    said = answer_next_dialog(QMessageBox.StandardButton.No)
    click(qtbot, speakers_tab.delete_button)
    assert said and "Erase Caller 90?" in said[0]
    qtbot.wait(500)
    assert appliance.get_json("/speakers")[1]["data"][-1]["display_name"] == "Caller 90"
    answer_next_dialog(QMessageBox.StandardButton.Yes)
    click(qtbot, speakers_tab.delete_button)
    qtbot.waitUntil(lambda: "audit id" in speakers_tab.speakers_status.text(), timeout=30_000)
    assert (
        speakers_tab.last_receipt["blob_bytes_deleted"] > 0
        and "every node confirmed" in speakers_tab.speakers_status.text()
    )
    # nothing is selected afterwards: a second click on Delete cannot reach the next person
    assert not speakers_tab.delete_button.isEnabled()
    qtbot.mouseClick(speakers_tab.delete_button, Qt.MouseButton.LeftButton)
    qtbot.wait(300)
    assert QApplication.activeModalWidget() is None
    assert [s["id"] for s in appliance.get_json("/speakers")[1]["data"]] == [other["id"]]
    window.close()


async def enroll_over_http(appliance: Appliance, name: str) -> dict[str, object]:
    speaker = sample_speakers()[1]
    reference, consent = enrollment_audio(speaker)
    async with aiohttp.ClientSession() as http:
        return await enroll(http, appliance.url, appliance.key, name, reference, consent, speaker)


def test_the_window_stays_responsive_when_the_appliance_hangs_or_is_gone(qtbot: QtBot, fake_mic: Path) -> None:
    from gui.window import MainWindow

    hanging = socket.create_server(("127.0.0.1", 0))  # accepts connections, never answers
    try:
        window = MainWindow(url=f"http://127.0.0.1:{hanging.getsockname()[1]}", key="sce_x_y")
        connect_tab = window.connect_tab
        qtbot.addWidget(window)
        window.show()
        click(qtbot, connect_tab.connect_button)
        ticks: list[int] = []
        timer = QTimer()
        timer.timeout.connect(lambda: ticks.append(1))
        timer.start(20)
        qtbot.wait(500)
        assert len(ticks) >= 10 and connect_tab.health_label.text() == "Connecting…"  # the GUI thread kept running
        timer.stop()
    finally:
        hanging.close()
    gone = free_port()
    connect_tab.url_edit.setText(f"http://127.0.0.1:{gone}")
    click(qtbot, connect_tab.connect_button)
    qtbot.waitUntil(lambda: "cannot be reached" in connect_tab.health_label.text(), timeout=20_000)
    window.close()
