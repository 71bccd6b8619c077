"""A throwaway certificate authority for a local TLS broker (tests and trials, never production).

:func:`make_throwaway_tls` writes, in one folder, a CA certificate, a broker key and certificate
for ``localhost``/``127.0.0.1`` signed by it, and a client key and certificate (for mutual TLS).
Keys are unencrypted PEM files with mode 0600. It needs the ``cryptography`` package (in the
``dev`` extra); a production cluster uses the certificates its operators issue.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from infra.security import write_private_file
from maxlake.errors import ConfigError

__all__ = ["TlsFiles", "existing_tls", "make_throwaway_tls"]


@dataclass(frozen=True)
class TlsFiles:
    """PEM files of a throwaway CA, one broker and one client.

    Attributes:
        ca: the CA certificate (clients' ``MAXLAKE_SSL_CAFILE``, the broker's truststore).
        broker_pem: the broker's private key followed by its certificate (Kafka PEM keystore;
            server and client use, as a single node connects to itself).
        client_cert: a client certificate signed by the CA (``MAXLAKE_SSL_CERTFILE``).
        client_key: its private key (``MAXLAKE_SSL_KEYFILE``).
    """

    ca: Path
    broker_pem: Path
    client_cert: Path
    client_key: Path


def _files(folder: Path) -> TlsFiles:
    return TlsFiles(
        folder / "ca.pem", folder / "broker.pem", folder / "client.pem", folder / "client.key"
    )


def existing_tls(folder: Path) -> TlsFiles | None:
    """The files :func:`make_throwaway_tls` wrote into ``folder``, or None when any is missing."""
    files = _files(folder)
    present = all(
        p.is_file() for p in (files.ca, files.broker_pem, files.client_cert, files.client_key)
    )
    return files if present else None


def make_throwaway_tls(folder: Path, *, days: int = 2) -> TlsFiles:
    """Create a CA and broker/client certificates valid for ``days`` days under ``folder``.

    Raises:
        ConfigError: the ``cryptography`` package is not installed.
    """
    try:
        from cryptography import x509  # noqa: PLC0415 - cryptography is a dev-only dependency
        from cryptography.hazmat.primitives import hashes, serialization  # noqa: PLC0415 - cryptography is a dev-only dependency
        from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415 - cryptography is a dev-only dependency
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID  # noqa: PLC0415 - cryptography is a dev-only dependency
    except ImportError as exc:
        raise ConfigError(
            "a throwaway CA needs the cryptography package: pip install -e '.[dev]'"
        ) from exc
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC) - timedelta(minutes=5)

    def name(common: str) -> Any:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])

    def pem_key(key: Any) -> str:
        return str(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ).decode()
        )

    def pem_cert(cert: Any) -> str:
        return str(cert.public_bytes(serialization.Encoding.PEM).decode())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(name("maxlake throwaway CA"))
        .issuer_name(name("maxlake throwaway CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
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
        .sign(ca_key, hashes.SHA256())
    )

    def leaf(common: str, usage: Any, sans: list[Any]) -> tuple[Any, Any]:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder()
            .subject_name(name(common))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(now + timedelta(days=days))
            .add_extension(x509.ExtendedKeyUsage(usage), critical=False)
        )
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        return key, builder.sign(ca_key, hashes.SHA256())

    broker_key, broker_cert = leaf(
        "localhost",
        [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
        [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))],
    )
    client_key, client_cert = leaf("maxlake-client", [ExtendedKeyUsageOID.CLIENT_AUTH], [])
    files = _files(folder)
    files.ca.write_text(pem_cert(ca_cert))
    write_private_file(files.broker_pem, pem_key(broker_key) + pem_cert(broker_cert))
    files.client_cert.write_text(pem_cert(client_cert))
    write_private_file(files.client_key, pem_key(client_key))
    return files
