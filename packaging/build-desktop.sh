#!/usr/bin/env bash
# Build the desktop client as a self-contained folder with PyInstaller, from a GUI-only
# environment (no torch): dist/scaiecho-desktop/scaiecho-desktop. PortAudio comes from the
# system (Debian: libportaudio2), as for the pip install.
#
#   packaging/build-desktop.sh [--out DIR]      # default: <repo>/dist
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
out="$repo/dist"
if [ "${1:-}" = "--out" ]; then out="$(realpath -m "$2")"; fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

python3 -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet --upgrade pip
"$work/venv/bin/pip" install --quiet "$repo[gui]" "pyinstaller>=6"
if "$work/venv/bin/python" -c "import torch" 2>/dev/null; then
    echo "the GUI environment pulled torch: check the gui extra's dependencies" >&2
    exit 1
fi
# Silero's ONNX model ships as package data of faster-whisper; the appliance's heavy stacks are
# not part of the client.
"$work/venv/bin/pyinstaller" --noconfirm --log-level WARN --onedir --name scaiecho-desktop \
    --distpath "$out" --workpath "$work/build" --specpath "$work" \
    --collect-data faster_whisper \
    "$repo/packaging/desktop/scaiecho_desktop.py"
echo "built $out/scaiecho-desktop/scaiecho-desktop ($(du -sh "$out/scaiecho-desktop" | cut -f1))"
