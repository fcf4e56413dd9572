"""`scaiecho-desktop`: the desktop client's entry point."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PySide6.QtWidgets import QApplication

    from gui.window import MainWindow


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, then run the window (imports Qt only after `--help` is handled)."""
    parser = argparse.ArgumentParser(
        prog="scaiecho-desktop",
        description="Record and enroll speakers, manage them, and watch live transcripts with names.",
        epilog="SCAIGRID_HOST, SCAIGRID_API_KEY and SCAIGRID_CA_FILE are read from the environment when set.",
    )
    parser.add_argument("--url", default=os.environ.get("SCAIGRID_HOST", "http://127.0.0.1:8080"))
    parser.add_argument(
        "--ca-file",
        default=os.environ.get("SCAIGRID_CA_FILE"),
        help="the appliance CA (PEM, from `scaiecho-admin ca export`) to trust for https:// URLs",
    )
    parser.add_argument("--connect", action="store_true", help="connect at start with the URL and key given")
    parser.add_argument(
        "--check", action="store_true", help="check an install: open the window, load the VAD model, exit 0"
    )
    args = parser.parse_args(argv)
    from PySide6.QtWidgets import QApplication

    from gui.window import MainWindow

    app = QApplication(sys.argv[:1])
    window = MainWindow(url=args.url, ca_file=args.ca_file)
    window.show()
    if args.check:
        return _check(app, window)
    if args.connect:
        window.connect_tab.connect_appliance()
    return app.exec()


def _check(app: QApplication, window: MainWindow) -> int:
    """What a packaged client needs at run time: Qt's platform plugin, the window, the Silero model."""
    import numpy as np

    from models.audio import SAMPLE_RATE
    from models.vad import speech_regions

    app.processEvents()
    tone = (0.1 * np.sin(np.arange(SAMPLE_RATE) * 2 * np.pi * 220 / SAMPLE_RATE)).astype(np.float32)
    speech_regions(tone)
    window.close()
    print(f"ok: {app.platformName()} platform, window {window.windowTitle()!r}, VAD model loaded")
    return 0


if __name__ == "__main__":
    sys.exit(main())
