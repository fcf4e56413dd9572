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
    window.apply_features(features({"scaiecho:enroll", "scaiecho:transcribe", "scaiecho:diarize"}), connected=True)
    window.health_label.setText("ok: Redis ok, 2 node(s) online, ASR ok.")
    window.name_edit.setText("Alice Example")
    window.full_name_edit.setText("Alice Example")
    window.description_edit.setText("Customer success lead")
    window.reference_panel.status.setText("24.3 s recorded, 21.8 s of speech. Ready to upload.")
    window.reference_panel.show_level(-18)
    window.consent_panel.status.setText("Recording… 6 s")
    window.consent_panel.show_level(-22)
    window.speaker_docs = EXAMPLE_SPEAKERS
    window._fill_table()
    window.speakers_status.setText("Erased Dana Example: audit id era_5d1c, 812344 bytes deleted, evicted from "
                                   "node-1, node-2, every node confirmed.")  # fmt: skip
    window.diarize_box.setChecked(True)
    for frame in EXAMPLE_FRAMES:
        window._frame(frame)
    window.live_progress.setVisible(True)
    window.live_progress.setRange(0, 1000)
    window.live_progress.setValue(100)
    window.live_status.setText(live_status_text(9.0, 90.0, window.transcript))
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
