"""PyInstaller entry point of the desktop bundle: the same `main` as `scaiecho-desktop`."""

import sys

from gui.app import main

if __name__ == "__main__":
    sys.exit(main())
