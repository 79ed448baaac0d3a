"""The master key of a store, kept outside it, and the secrets derived from it.

One 256-bit master key per installation, in a file of its own (``CRM_ES_MASTER_KEY_FILE``, or
``?master_key_file=PATH`` in the store URL). A new SQLite store gets one created beside its
database file (``crm.db`` -> ``crm.db.key``, readable by its owner only); a PostgreSQL store
must be given one: a copy of the database alone must decrypt nothing. The store keeps a check
value (an HMAC of a fixed label), so opening it with the wrong key fails at once instead of
reading every personal field as unreadable.

Every secret the store needs comes from the master key through HKDF-SHA256 with a label of its
own (:data:`PURPOSES`): the key-encryption key that wraps each customer's data key, the MAC key of
snapshots, and the keys of the hashes that must not be brute-forced (idempotency payload hashes,
automatic command ids, the contact index's phones and emails). Keep the key in a KMS or a
secrets manager and hand the process its file.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path
from typing import Final

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from crm_es.domain.errors import CrmError
from crm_es.store.url import StoreConfig

MASTER_KEY_FILE_SETTING: Final = "CRM_ES_MASTER_KEY_FILE"
MASTER_KEY_BYTES: Final = 32
PURPOSES: Final = (
    "wrap-customer-keys", "snapshot-mac", "idempotency-hash", "automatic-ids", "contact-index",
)  # fmt: skip
_CHECK_LABEL: Final = b"crm_es master key check v1"


class MasterKeyError(CrmError):
    """The master key is missing, unreadable or not this store's."""


class StoreSecrets:
    """The master key and the keys derived from it (never stored, never printed)."""

    def __init__(self, master_key: bytes) -> None:
        if len(master_key) != MASTER_KEY_BYTES:
            msg = f"a master key is {MASTER_KEY_BYTES} bytes, this one {len(master_key)}"
            raise MasterKeyError(msg)
        self._master = master_key
        self.wrap_key = self._derive("wrap-customer-keys")
        self.snapshot_key = self._derive("snapshot-mac")
        self.idempotency_key = self._derive("idempotency-hash")
        self.automatic_ids_key = self._derive("automatic-ids")
        # Phones and emails are few enough to try them all: their index hashes need a secret.
        self.contact_index_key = self._derive("contact-index")
        self.seal_key = self._derive("store-seals")

    def _derive(self, purpose: str) -> bytes:
        return HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"crm_es " + purpose.encode()
        ).derive(self._master)

    def seal(self, what: str) -> str:
        """A mark for a fact the store keeps in its settings (hex): only the master key's
        holder can write one, so a row added behind the store's back carries none."""
        return hmac.new(self.seal_key, what.encode(), hashlib.sha256).hexdigest()

    def check_value(self) -> str:
        """What the store keeps to recognise its master key (reveals nothing about it)."""
        return hmac.new(self._master, _CHECK_LABEL, hashlib.sha256).hexdigest()

    def __repr__(self) -> str:
        return "StoreSecrets(<hidden>)"


def read_master_key(path: Path) -> bytes:
    """The key in ``path``: 32 raw bytes, or their hex or base64 text."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise MasterKeyError(f"cannot read the master key file {path}: {e.strerror}") from None
    text = data.strip()
    if len(data) == MASTER_KEY_BYTES:
        return data
    for decode in (bytes.fromhex, _b64):
        try:
            key = decode(text.decode("ascii"))
        except (ValueError, UnicodeDecodeError):
            continue
        if len(key) == MASTER_KEY_BYTES:
            return key
    msg = (
        f"the master key file {path} does not hold a {MASTER_KEY_BYTES}-byte key "
        "(raw, hex or base64)"
    )
    raise MasterKeyError(msg)


def _b64(text: str) -> bytes:
    import base64

    return base64.b64decode(text, validate=True)


def create_master_key(path: Path) -> bytes:
    """Write a new random key to ``path`` (which must not exist), readable by its owner only."""
    key = secrets.token_bytes(MASTER_KEY_BYTES)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return read_master_key(path)  # another process created it first
    except OSError as e:
        raise MasterKeyError(f"cannot create the master key file {path}: {e.strerror}") from None
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(key.hex() + "\n")
    return key


# In-memory stores live as long as their process: one key for all of them, never written down.
_EPHEMERAL: Final = secrets.token_bytes(MASTER_KEY_BYTES)


def master_key_for(
    config: StoreConfig, env_path: str | None, *, new_store: bool
) -> tuple[bytes, str]:
    """The store's master key, and where it came from (a path, or "memory").

    From ``?master_key_file=`` in the URL, else ``$CRM_ES_MASTER_KEY_FILE``; else, for a SQLite
    file, ``<database>.key`` beside it (created for a ``new_store`` only: a store that has a key
    must be opened with it); an in-memory store gets a key of its process. A PostgreSQL store
    must be given its file.
    """
    given = config.master_key_file or env_path
    if given:
        return read_master_key(Path(given)), given
    if config.kind != "sqlite":
        msg = (
            f"a PostgreSQL store needs its master key: set {MASTER_KEY_FILE_SETTING} or add "
            "?master_key_file=PATH to the store URL (keep the file outside the database)"
        )
        raise MasterKeyError(msg)
    name = config.env["SQLITE_DBNAME"]
    if name.startswith("file:"):
        return _EPHEMERAL, "memory"
    path = Path(name + ".key")
    if path.exists() or not new_store:
        return read_master_key(path), str(path)
    return create_master_key(path), str(path)
