"""`scaiecho-desktop`: the desktop client's entry point."""

from __future__ import annotations

import argparse
import os
import sys


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
    args = parser.parse_args(argv)
    from PySide6.QtWidgets import QApplication

    from gui.window import MainWindow

    app = QApplication(sys.argv[:1])
    window = MainWindow(url=args.url, ca_file=args.ca_file)
    window.show()
    if args.connect:
        window.connect_appliance()
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
