#!/usr/bin/env bash
# Debian packages the appliance and its tests use. Run as root it installs them; otherwise it
# only says what is missing (the appliance itself needs none: Redis and FFmpeg ship in wheels).
set -euo pipefail

# libportaudio2: sounddevice; the rest: Qt (PySide6) for the desktop client, on a real X display
# (the xcb platform plugin links or loads every libxcb-* below) and offscreen.
# With --test also chromium (the admin console's browser tests), Xvfb (the desktop on a display) and
# espeak-ng (a synthesized voice reading a consent statement: right words, another voice).
packages=(libportaudio2 curl libegl1 libgl1 libxkbcommon0 libfontconfig1 libglib2.0-0 libdbus-1-3
          libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0
          libxcb-render-util0 libxcb-shape0 libxcb-xfixes0 libxcb-xinerama0 libxcb-xkb1 libx11-xcb1)
if [ "${1:-}" = "--test" ]; then
    packages+=(chromium xvfb xauth espeak-ng)
fi
missing=()
for pkg in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    echo "installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
    echo "note: not root; please install these Debian packages: ${missing[*]}" >&2
fi
