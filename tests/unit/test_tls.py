"""The appliance CA and server certificate: created once, 0600 keys, verifiable chain, reissued
when the names change; when HTTPS is on."""

from __future__ import annotations

import ipaddress
import stat
from pathlib import Path

import pytest
from cryptography import x509

from appliance.settings import load_settings
from appliance.tls import TlsFiles, ensure_ca, ensure_server_cert, fingerprint


def sans(path: Path) -> tuple[set[str], set[str]]:
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return set(san.get_values_for_type(x509.DNSName)), {str(a) for a in san.get_values_for_type(x509.IPAddress)}


def test_ca_is_made_once_with_private_keys(tmp_path: Path) -> None:
    files = TlsFiles(tmp_path / "tls")
    ca = ensure_ca(files)
    assert ensure_ca(files) == ca  # the same CA on every later start
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert stat.S_IMODE(files.ca_key.stat().st_mode) == 0o600
    assert len(fingerprint(ca).split(":")) == 32


def test_server_cert_chains_to_the_ca_and_follows_the_names(tmp_path: Path) -> None:
    files = TlsFiles(tmp_path / "tls")
    ensure_server_cert(files, "0.0.0.0", ["appliance.lan", "192.0.2.7"])
    dns, ips = sans(files.server_cert)
    assert {"localhost", "appliance.lan"} <= dns and {"127.0.0.1", "::1", "192.0.2.7"} <= ips
    assert "0.0.0.0" not in ips
    leaf = x509.load_pem_x509_certificate(files.server_cert.read_bytes())
    leaf.verify_directly_issued_by(ensure_ca(files))
    assert stat.S_IMODE(files.server_key.stat().st_mode) == 0o600
    first = files.server_cert.read_bytes()
    ensure_server_cert(files, "0.0.0.0", ["appliance.lan", "192.0.2.7"])
    assert files.server_cert.read_bytes() == first  # still current: kept
    ensure_server_cert(files, "198.51.100.4", [])
    dns, ips = sans(files.server_cert)
    assert "198.51.100.4" in ips and "appliance.lan" not in dns
    assert all(ipaddress.ip_address(a) for a in ips)


@pytest.mark.parametrize(
    ("host", "mode", "tls"),
    [
        ("127.0.0.1", "auto", False),
        ("localhost", "auto", False),
        ("::1", "auto", False),
        ("0.0.0.0", "auto", True),
        ("192.0.2.7", "auto", True),
        ("0.0.0.0", "off", False),
        ("127.0.0.1", "on", True),
    ],
)
def test_https_by_default_beyond_loopback(tmp_path: Path, host: str, mode: str, tls: bool) -> None:
    settings = load_settings(tmp_path, overrides={"server": {"host": host, "tls": mode}})
    assert settings.uses_tls is tls
