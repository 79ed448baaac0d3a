"""The Ed25519 key that signs audit checkpoints, kept outside the database.

``CRM_ES_SIGNING_KEY_FILE`` (or ``--signing-key``) names a file holding the private key (PEM, as
``crm-es audit signing-key`` writes it). Signing needs it; checking a signature needs only the
public key, which an auditor keeps on their side (``--public-key``): a checkpoint file brings no
key of its own that a verifier would trust, so a forged checkpoint cannot carry its forger's key.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from crm_es.domain.errors import CrmError

SIGNING_KEY_SETTING: Final = "CRM_ES_SIGNING_KEY_FILE"


class SigningKeyError(CrmError):
    """The signing or public key is missing or unreadable."""


def create_signing_key(path: Path) -> Ed25519PublicKey:
    """Write a new private key to ``path`` (which must not exist, readable by its owner
    only); returns its public key."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as e:
        raise SigningKeyError(f"cannot create the signing key file {path}: {e.strerror}") from None
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    return key.public_key()


def load_signing_key(path: str | Path | None) -> Ed25519PrivateKey:
    """The private key from ``path``, else from ``$CRM_ES_SIGNING_KEY_FILE``."""
    given = path or os.environ.get(SIGNING_KEY_SETTING)
    if not given:
        msg = (
            f"no signing key: set {SIGNING_KEY_SETTING} or pass --signing-key (create one with "
            "`crm-es audit signing-key --out FILE`, and keep it outside the database)"
        )
        raise SigningKeyError(msg)
    try:
        data = Path(given).read_bytes()
        key = serialization.load_pem_private_key(data, password=None)
    except OSError as e:
        raise SigningKeyError(f"cannot read the signing key file {given}: {e.strerror}") from None
    except (ValueError, TypeError):
        raise SigningKeyError(f"{given} holds no PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"{given} holds a private key, but not an Ed25519 one")
    return key


def load_public_key(path: str | Path) -> Ed25519PublicKey:
    """A public key file (PEM, or the base64 of its 32 raw bytes), or the public half of a
    private key file."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise SigningKeyError(f"cannot read the key file {path}: {e.strerror}") from None
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError:
        try:
            private = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError):
            try:
                raw = base64.b64decode(data.strip(), validate=True)
                return Ed25519PublicKey.from_public_bytes(raw)
            except ValueError:
                raise SigningKeyError(f"{path} holds no Ed25519 key") from None
        key = private.public_key()
    if not isinstance(key, Ed25519PublicKey):
        raise SigningKeyError(f"{path} holds a key, but not an Ed25519 one")
    return key


def public_text(key: Ed25519PublicKey) -> str:
    """The public key as the base64 of its 32 raw bytes (what ``--public-key`` accepts)."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def signature_ok(key: Ed25519PublicKey, signature: bytes, message: bytes) -> bool:
    try:
        key.verify(signature, message)
    except InvalidSignature:
        return False
    return True
