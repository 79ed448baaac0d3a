"""Personal data is encrypted with a key per customer: nothing personal is stored in clear."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from pathlib import Path
from uuid import UUID, uuid4

import pytest

from crm_es import CRM
from crm_es.domain.errors import PersonalDataUnreadable
from crm_es.domain.ids import customer_id_for_ref
from crm_es.domain.values import ERASED
from crm_es.store.keys import KEY_TABLE, AesKeyWrapper, SqlKeyStore
from crm_es.store.personal_data import TOKEN_PREFIX, CustomerKeyCipher
from crm_es.store.secrets import MasterKeyError
from crm_es.store.url import parse_store_url
from tests.helpers.personal_data import (
    BIRTHDAY,
    EMAIL,
    FREE_TEXT,
    NAME,
    PHONE,
    fill,
    leaks,
    sqlite_bytes,
)
from tests.helpers.raw_store import raw, table

WRAP_KEY = b"k" * 32  # a key store of the test's own wraps with it


def test_no_personal_value_is_stored_in_clear(store_url: str, tmp_path: Path) -> None:
    with CRM(store_url, snapshot_interval=4) as crm:
        fill(crm)
        state = crm.get_customer("C-1")
        assert (state.name, state.email, state.phone, state.birthday) == (
            NAME, EMAIL.upper(), PHONE, BIRTHDAY
        )  # fmt: skip
        assert len(list(crm.snapshots.get(state.id))) >= 2  # type: ignore[union-attr]
        history = list(crm.history("C-1"))
        assert history[2].summary == FREE_TEXT  # type: ignore[attr-defined]
        if store_url.startswith("sqlite"):
            files = sqlite_bytes(tmp_path)  # while open: the WAL holds the recent pages
            assert files.get("crm.db-wal"), "expected a non-empty WAL file to scan"
            assert {name: leaks(data) for name, data in files.items()} == {
                name: [] for name in files
            }
            assert any("华东".encode() in data for data in files.values())  # the scan does see text
    if store_url.startswith("sqlite"):
        files = sqlite_bytes(tmp_path)
        assert {name: leaks(data) for name, data in files.items()} == {name: [] for name in files}
    else:
        for purpose in ("events", "snapshots"):
            rows = raw(store_url, f"SELECT topic, state FROM {table(store_url, purpose)}")
            assert rows
            assert [leaks(bytes(state)) for _, state in rows] == [[] for _ in rows]
    stored = raw(store_url, f"SELECT state FROM {table(store_url)}")
    assert any(TOKEN_PREFIX.encode() in bytes(r[0]) for r in stored)


def test_a_token_copied_to_another_customer_does_not_decrypt(store_url: str) -> None:
    with CRM(store_url) as crm:
        a, b = uuid4(), uuid4()
        cipher = crm.store.personal_data
        token = cipher.encrypt(a, NAME)
        assert token.startswith(TOKEN_PREFIX) and cipher.encrypt(a, NAME) != token  # fresh nonce
        assert cipher.decrypt(a, token) == NAME
        cipher.encrypt(b, "someone else")  # b has a key of its own …
        with pytest.raises(PersonalDataUnreadable, match=f"customer {b}"):
            cipher.decrypt(b, token)  # … and the customer id is authenticated data


def test_keys_at_rest_are_wrapped_by_the_master_key(store_url: str) -> None:
    with CRM(store_url) as crm:
        crm.register_customer(external_ref="C-1", name=NAME)
        assert crm.get_customer("C-1").name == NAME
        cid = customer_id_for_ref("C-1")
        assert crm.store.personal_data.key(cid) is not None
    material = raw(store_url, f"SELECT key_material FROM {KEY_TABLE}")
    assert [str(m[0])[:3] for m in material] == ["w1:"]  # only wrapped keys at rest
    raw_key = base64.b64encode(key_of(store_url, cid)).decode()
    assert raw_key not in str(material)


def key_of(url: str, cid: UUID) -> bytes:
    with CRM(url) as crm:
        key = crm.store.personal_data.key(cid)
    assert key is not None
    return key


def test_a_store_opened_with_another_master_key_fails_at_once(
    store_url: str, tmp_path: Path
) -> None:
    with CRM(store_url) as crm:
        crm.register_customer(external_ref="C-1", name=NAME)
    other = tmp_path / "other.key"
    other.write_text("ab" * 32)
    url = re.sub(r"[?&]master_key_file=[^&]*", "", store_url)
    url += ("&" if "?" in url else "?") + f"master_key_file={other}"
    with pytest.raises(MasterKeyError, match="is not this store's"):
        CRM(url)


def test_a_sqlite_store_needs_the_key_file_it_was_created_with(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    with CRM(url) as crm:
        crm.register_customer(external_ref="C-1", name=NAME)
    (tmp_path / "crm.db.key").unlink()
    with pytest.raises(MasterKeyError, match="cannot read the master key file"):
        CRM(url)


def test_a_postgres_store_must_be_given_its_master_key(postgres_url: str) -> None:
    url = re.sub(r"[?&]master_key_file=[^&]*", "", postgres_url)
    with pytest.raises(MasterKeyError, match="needs its master key"):
        CRM(url)


def test_a_key_store_can_be_passed_in(store_url: str) -> None:
    with CRM(store_url):  # creates the schema
        pass
    keys = SqlKeyStore(parse_store_url(store_url), AesKeyWrapper(WRAP_KEY))
    with CRM(store_url, key_store=keys) as crm:
        crm.register_customer(external_ref="C-1", name=NAME)
        assert keys.get(customer_id_for_ref("C-1")) is not None
        assert crm.get_customer("C-1").name == NAME


def test_concurrent_key_creation_agrees_on_one_key(store_url: str) -> None:
    config = parse_store_url(store_url)
    with CRM(store_url):  # creates the tables
        pass
    one, two = (
        SqlKeyStore(config, AesKeyWrapper(WRAP_KEY)),
        SqlKeyStore(config, AesKeyWrapper(WRAP_KEY)),
    )
    try:
        cid = uuid4()
        assert one.create(cid) == two.create(cid) == two.get(cid)
        token = CustomerKeyCipher(one).encrypt(cid, NAME)
        assert CustomerKeyCipher(two).decrypt(cid, token) == NAME
    finally:
        one.close()
        two.close()


class _ErasedWhileRead(SqlKeyStore):
    """A key store whose next ``get`` lets an erasure land right after the key was read, as
    another thread's ``erase_personal_data`` can."""

    erase_now: Callable[[], object] | None = None

    def get(self, customer_id: UUID) -> bytes | None:
        key = super().get(customer_id)
        erase, self.erase_now = self.erase_now, None
        if erase is not None:
            erase()
        return key


def test_a_key_read_while_it_is_erased_is_not_used_after_the_erasure_returned(
    store_url: str,
) -> None:
    with CRM(store_url):  # creates the tables
        pass
    keys = _ErasedWhileRead(parse_store_url(store_url), AesKeyWrapper(WRAP_KEY))
    try:
        writer, reader = CustomerKeyCipher(keys), CustomerKeyCipher(keys)
        cid = uuid4()
        token = writer.encrypt(cid, NAME)
        keys.erase_now = lambda: writer.shred(cid)
        assert reader.decrypt(cid, token) == NAME  # read before the erasure finished
        assert keys.is_erased(cid)
        assert reader.decrypt(cid, token) == ERASED  # never the old key once it returned
    finally:
        keys.close()


def test_a_key_planted_for_a_future_customer_is_a_clear_error_not_a_crash(store_url: str) -> None:
    """A row written behind the store's back for a ref not yet registered: its registration
    says the key is unreadable (and stores nothing) instead of a cipher's traceback."""
    with CRM(store_url) as crm:
        crm.register_customer(external_ref="C-1", name="王芳")
        cid = str(customer_id_for_ref("FUTURE-1"))
        raw(store_url, f"INSERT INTO {KEY_TABLE} (customer_id, key_material, created_at) "
            "VALUES (?, ?, ?)", (cid, "w1:AAAA", "2026-01-01T00:00:00Z"))  # fmt: skip
        head = crm.recorder.max_notification_id()
        with pytest.raises(PersonalDataUnreadable, match="planted"):
            crm.register_customer(external_ref="FUTURE-1", name="李雷")
        assert crm.recorder.max_notification_id() == head
