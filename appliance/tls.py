"""The appliance's own certificate authority and the edge server's HTTPS certificate.

On first start the appliance makes a CA (EC P-256, 10 years) in `<data-dir>/tls/`; clients trust
that CA once (`scaiecho-admin ca export`, fingerprint on the console's health page). The server
certificate it signs names localhost, the host's names and addresses, the bind address and any
`server.tls_names`; it is issued again when those change or it nears its end.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from appliance.crypto import write_secret_file

CA_DAYS = 3650
#: Browsers refuse server certificates valid for longer than 398 days.
SERVER_DAYS = 397
RENEW_BEFORE = dt.timedelta(days=30)


@dataclass(frozen=True)
class TlsFiles:
    """Where one data dir keeps its TLS material."""

    directory: Path

    @property
    def ca_cert(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def ca_key(self) -> Path:
        return self.directory / "ca.key"

    @property
    def server_cert(self) -> Path:
        return self.directory / "server.pem"

    @property
    def server_key(self) -> Path:
        return self.directory / "server.key"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def ensure_ca(files: TlsFiles) -> x509.Certificate:
    """The data dir's CA certificate, created (with its 0600 key) when there is none."""
    if files.ca_cert.exists() and files.ca_key.exists():
        return x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
    files.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ScaiEcho appliance"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"ScaiEcho appliance CA ({socket.gethostname()})"),
        ]
    )
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    files.ca_key.unlink(missing_ok=True)  # half of a pair left by an interrupted first start
    write_secret_file(files.ca_key, _key_pem(key))
    files.ca_cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.server_cert.unlink(missing_ok=True)  # signed by a CA that is gone
    return cert


def host_names(bind_host: str, extra: list[str]) -> tuple[list[str], list[str]]:
    """(DNS names, IP addresses) the server certificate should cover."""
    dns = {"localhost", socket.gethostname(), socket.getfqdn()}
    ips = {"127.0.0.1", "::1"}
    candidates = [*extra, bind_host]
    with contextlib.suppress(OSError):
        candidates += [str(info[4][0]) for info in socket.getaddrinfo(socket.gethostname(), None)]
    for name in candidates:
        try:
            address = ipaddress.ip_address(name)
        except ValueError:
            if name:
                dns.add(name)
            continue
        if not address.is_unspecified:
            ips.add(str(address))
    return sorted(n for n in dns if n), sorted(ips)


def _covers(cert: x509.Certificate, dns: list[str], ips: list[str]) -> bool:
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return set(san.get_values_for_type(x509.DNSName)) == set(dns) and {
        str(a) for a in san.get_values_for_type(x509.IPAddress)
    } == set(ips)


def ensure_server_cert(files: TlsFiles, bind_host: str, extra_names: list[str]) -> Path:
    """A current server certificate (with the CA after it) for these names; returns its path."""
    ca_cert = ensure_ca(files)
    dns, ips = host_names(bind_host, extra_names)
    if files.server_cert.exists() and files.server_key.exists():
        current = x509.load_pem_x509_certificate(files.server_cert.read_bytes())
        if current.not_valid_after_utc - RENEW_BEFORE > _now() and _covers(current, dns, ips):
            return files.server_cert
    ca_key = serialization.load_pem_private_key(files.ca_key.read_bytes(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    san = [x509.DNSName(n) for n in dns] + [x509.IPAddress(ipaddress.ip_address(a)) for a in ips]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, socket.gethostname())]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=SERVER_DAYS))
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    files.server_key.unlink(missing_ok=True)
    write_secret_file(files.server_key, _key_pem(key))
    files.server_cert.write_bytes(
        cert.public_bytes(serialization.Encoding.PEM) + ca_cert.public_bytes(serialization.Encoding.PEM)
    )
    return files.server_cert


def server_context(files: TlsFiles, bind_host: str, extra_names: list[str]) -> ssl.SSLContext:
    """TLS 1.2+ server context with the current certificate."""
    cert_path = ensure_server_cert(files, bind_host, extra_names)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_path, files.server_key)
    return context


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 fingerprint as browsers show it: ``AB:CD:…``."""
    return ":".join(f"{b:02X}" for b in cert.fingerprint(hashes.SHA256()))
