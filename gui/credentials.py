"""The API key in the OS keyring, per appliance URL (nothing is written when there is no keyring)."""

from __future__ import annotations

KEYRING_SERVICE = "scaiecho-desktop"


def load_key(url: str) -> str:
    """The key for ``url`` from the OS keyring, if one is available."""
    try:
        import keyring

        return keyring.get_password(KEYRING_SERVICE, url) or ""
    except Exception:  # no keyring backend on this machine
        return ""


def save_key(url: str, key: str) -> bool:
    """Keep the key in the OS keyring; False when there is none."""
    try:
        import keyring

        keyring.set_password(KEYRING_SERVICE, url, key)
        return True
    except Exception:
        return False
