"""A self-signed certificate for an agent on a lab network, pinned by clients through its SHA-256 fingerprint.

Made with the ``cryptography`` package (an ECDSA P-256 key) in the agent's state folder, and reused while it
is valid and matches its key. There is no certificate authority: clients pin the fingerprint the agent
prints (``edgekit profile --agent-fingerprint``).
"""
from __future__ import annotations

import datetime
import hashlib
import ipaddress
import os
import socket
from pathlib import Path

from edgekit.atomic import atomic_write_bytes
from edgekit.errors import EdgekitError, InvalidOptionError

CERT_FILE, KEY_FILE = "agent-cert.pem", "agent-key.pem"
VALID_DAYS = 825


def default_state_dir() -> Path:
    """``$EDGEKIT_AGENT_HOME``, else ``$XDG_STATE_HOME/edgekit/agent`` (``~/.local/state/edgekit/agent``)."""
    if os.environ.get("EDGEKIT_AGENT_HOME"):
        return Path(os.environ["EDGEKIT_AGENT_HOME"])
    base = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    return base / "edgekit" / "agent"


def fingerprint(der: bytes) -> str:
    """The SHA-256 fingerprint of a DER certificate as colon-separated upper-case hex (as OpenSSL prints it)."""
    digest = hashlib.sha256(der).hexdigest().upper()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def normalize_fingerprint(text: str) -> str:
    """A fingerprint as the user wrote it (``SHA256:AB:CD…``, ``ab cd…``, ``abcd…``) in :func:`fingerprint`'s form."""
    cleaned = text.strip().lower().removeprefix("sha256").lstrip(":= ")
    digits = "".join(c for c in cleaned if c not in ": ")
    if len(digits) != 64 or any(c not in "0123456789abcdef" for c in digits):
        raise InvalidOptionError(f"'{text}' is not a SHA-256 fingerprint",
                                 "copy the 64 hex digits the agent printed at start (colons optional)")
    return ":".join(digits[i:i + 2] for i in range(0, 64, 2)).upper()


def ensure_certificate(state_dir: Path, names: list[str]) -> tuple[Path, Path, str]:
    """The agent's certificate and key files (made if missing, expired or not matching) and the fingerprint."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    try:
        state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise InvalidOptionError(f"cannot create the agent's state folder {state_dir}: {exc.strerror}",
                                 "give a writable folder with --state-dir") from None
    cert_path, key_path = state_dir / CERT_FILE, state_dir / KEY_FILE
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        now = datetime.datetime.now(datetime.timezone.utc)
        usable = cert.not_valid_after_utc > now + datetime.timedelta(days=1) and (
            cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
            == key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo))
    except (OSError, ValueError, TypeError):
        usable = False
    if not usable:
        cert = _make_certificate(cert_path, key_path, names)
    return cert_path, key_path, fingerprint(cert.public_bytes(serialization.Encoding.DER))


def _make_certificate(cert_path: Path, key_path: Path, names: list[str]):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"edgekit agent on {socket.gethostname()}"[:64])])
    alternatives: list[x509.GeneralName] = []
    for name in dict.fromkeys(names):
        try:
            alternatives.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alternatives.append(x509.DNSName(name))
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
            .add_extension(x509.SubjectAlternativeName(alternatives), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    try:
        old_mask = os.umask(0o077)  # the key file is readable by its owner only
        try:
            atomic_write_bytes(key_path, key_pem)
        finally:
            os.umask(old_mask)
        atomic_write_bytes(cert_path, cert.public_bytes(serialization.Encoding.PEM))
    except OSError as exc:
        raise EdgekitError(f"cannot write the agent's certificate in {cert_path.parent}: {exc.strerror}",
                           "give a writable folder with --state-dir") from None
    return cert
