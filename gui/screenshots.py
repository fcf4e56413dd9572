"""Render every screen of the desktop client offscreen into docs/screenshots/*.png.

    python -m gui.screenshots [--out docs/screenshots]

The screens show example data put into their view models (no appliance or microphone needed),
so the pictures are the same on every machine.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from gui.viewmodels import features, live_status_text

EXAMPLE_SPEAKERS: list[dict[str, Any]] = [
    {"id": "spk_1", "display_name": "Alice Example", "language_primary": "en", "enrollment_status": "ready",
     "enrolled_on": ["node-1", "node-2"], "created_at": "2026-11-24T09:12:03Z"},
    {"id": "spk_2", "display_name": "Bruno Beispiel", "language_primary": "de", "enrollment_status": "ready",
     "enrolled_on": ["node-1", "node-2"], "created_at": "2026-11-24T09:20:41Z"},
    {"id": "spk_3", "display_name": "Chloé Exemple", "language_primary": "fr", "enrollment_status": "pending",
     "enrolled_on": [], "created_at": "2026-11-24T09:31:17Z"},
]  # fmt: skip

EXAMPLE_FRAMES: list[dict[str, Any]] = [
    {"type": "ready", "backend_used": "A", "session_id": "ses_example"},
    {"type": "delta", "segment_id": 0, "text": "Morning everyone, shall we start with the release?", "start": 0.4,
     "end": 3.1, "speaker_label": "Alice Example", "speaker_id": "spk_1", "speaker_confidence": 0.93},
    {"type": "delta", "segment_id": 1, "text": "Sure. The build went green last night.", "start": 3.5, "end": 5.8,
     "speaker_label": "Bruno Beispiel", "speaker_id": "spk_2", "speaker_confidence": 0.9},
    {"type": "delta", "segment_id": 2, "text": "I have one question about the migration.", "start": 6.2, "end": 8.4,
     "speaker_label": "spk_0"},
    {"type": "partial", "text": "Go ahead, what is", "start": 8.9},
]  # fmt: skip


def main() -> None:
    """Render the four tabs."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "docs" / "screenshots")
    args = parser.parse_args()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication

    from gui.window import MainWindow

    app = QApplication([])
    window = MainWindow(url="https://scaiecho.local:8443", key="sce_example_key")
    connect_tab, enroll_tab = window.connect_tab, window.enroll_tab
    speakers_tab, live_tab = window.speakers_tab, window.live_tab
    window.apply_features(features({"scaiecho:enroll", "scaiecho:transcribe", "scaiecho:diarize"}), connected=True)
    connect_tab.health_label.setText("ok: Redis ok, 2 node(s) online, ASR ok.")
    enroll_tab.name_edit.setText("Alice Example")
    enroll_tab.full_name_edit.setText("Alice Example")
    enroll_tab.description_edit.setText("Customer success lead")
    enroll_tab.reference_panel.status.setText("24.3 s recorded, 21.8 s of speech. Ready to upload.")
    enroll_tab.reference_panel.show_level(-18)
    enroll_tab.consent_panel.status.setText("Recording… 6 s")
    enroll_tab.consent_panel.show_level(-22)
    speakers_tab.speaker_docs = EXAMPLE_SPEAKERS
    speakers_tab._fill_table()
    speakers_tab.speakers_status.setText("Erased Dana Example: audit id era_5d1c, 812344 bytes deleted, evicted from "
                                   "node-1, node-2, every node confirmed.")  # fmt: skip
    live_tab.diarize_box.setChecked(True)
    for frame in EXAMPLE_FRAMES:
        live_tab._frame(frame)
    live_tab.live_progress.setVisible(True)
    live_tab.live_progress.setRange(0, 1000)
    live_tab.live_progress.setValue(100)
    live_tab.live_status.setText(live_status_text(9.0, 90.0, live_tab.transcript))
    window.resize(1000, 760)
    window.show()
    args.out.mkdir(parents=True, exist_ok=True)
    for index, name in enumerate(("connect", "enroll", "speakers", "live")):
        window.tabs.setCurrentIndex(index)
        app.processEvents()
        window.grab().save(str(args.out / f"desktop-{name}.png"))
        print(args.out / f"desktop-{name}.png")
    window.close()


if __name__ == "__main__":
    main()
