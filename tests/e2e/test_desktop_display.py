"""The desktop client on a real X display (Xvfb), as on a fresh Debian desktop after the README's
set-up: Qt's xcb platform plugin must load (its libxcb-* libraries come from
packaging/install-system-deps.sh), the window must map, and a screenshot of it is not blank."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def display(tmp_path: Path) -> Iterator[str]:
    """A fresh Xvfb server; its display name."""
    if shutil.which("Xvfb") is None:
        pytest.fail("Xvfb is missing: `make test` installs it (packaging/install-system-deps.sh --test)")
    name = f":{90 + os.getpid() % 400}"
    server = subprocess.Popen(
        ["Xvfb", name, "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    socket_path = Path(f"/tmp/.X11-unix/X{name[1:]}")
    deadline = time.monotonic() + 20
    while not socket_path.exists() and time.monotonic() < deadline and server.poll() is None:
        time.sleep(0.1)
    assert socket_path.exists(), "Xvfb did not start"
    yield name
    server.terminate()
    server.wait(10)


def desktop_env(display: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "QT_QPA_PLATFORM"}
    return env | {"DISPLAY": display, "QT_QPA_PLATFORM": "xcb"}


def test_the_desktop_client_starts_on_a_real_x_display(display: str) -> None:
    check = subprocess.run(
        [sys.executable, "-m", "gui.app", "--check"],
        env=desktop_env(display),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert "ok: xcb platform" in check.stdout, check.stdout


def test_its_window_is_drawn_on_the_display(display: str, tmp_path: Path) -> None:
    """Grab the X screen itself (not Qt's own rendering) while the window is up."""
    shot = tmp_path / "screen.png"
    script = (
        "import sys\n"
        "from PySide6.QtCore import QTimer\n"
        "from PySide6.QtWidgets import QApplication\n"
        "from gui.window import MainWindow\n"
        "app = QApplication(sys.argv[:1])\n"
        "w = MainWindow(url='http://127.0.0.1:9')\n"
        "w.show()\n"
        "def grab():\n"
        "    screen = app.primaryScreen().grabWindow(0)\n"
        f"    screen.save({str(shot)!r})\n"
        "    print('mapped', w.isVisible(), w.windowHandle().isExposed(), app.platformName())\n"
        "    app.quit()\n"
        "QTimer.singleShot(1500, grab)\n"
        "app.exec()\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", script], env=desktop_env(display), capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "mapped True True xcb" in run.stdout, run.stdout
    from PySide6.QtGui import QImage

    image = QImage(str(shot))
    assert not image.isNull() and image.width() == 1280
    colours = {image.pixel(x, y) for x in range(0, image.width(), 37) for y in range(0, image.height(), 29)}
    assert len(colours) > 5  # widgets and text, not an empty root window
