"""Personal data is encrypted with a key per customer: nothing personal is stored in clear."""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path
from uuid import UUID, uuid4

import pytest

from crm_es import CRM
from crm_es.domain.errors import PersonalDataUnreadable
from crm_es.domain.ids import customer_id_for_ref
from crm_es.domain.values import ERASED
from crm_es.store.keys import KEY_TABLE, TOKEN_PREFIX, CustomerKeyCipher, SqlKeyStore
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


def test_keys_can_be_wrapped_with_a_master_key_like_a_kms(store_url: str) -> None:
    master = base64.b64encode(b"k" * 32).decode()
    with CRM(store_url, env={"PERSONAL_DATA_MASTER_KEY": master}) as crm:
        crm.register_customer(external_ref="C-1", name=NAME)
        assert crm.get_customer("C-1").name == NAME
    material = raw(store_url, f"SELECT key_material FROM {KEY_TABLE}")
    assert [str(m[0])[:3] for m in material] == ["w1:"]  # only wrapped keys at rest
    wrapped = "its key is wrapped; set PERSONAL_DATA_MASTER_KEY"
    with CRM(store_url) as without_master, pytest.raises(Exception, match=wrapped):
        without_master.get_customer("C-1")


def test_a_key_store_can_be_passed_in(store_url: str) -> None:
    keys = SqlKeyStore(parse_store_url(store_url))
    with CRM(store_url, key_store=keys) as crm:
        crm.register_customer(external_ref="C-1", name=NAME)
        assert keys.get(customer_id_for_ref("C-1")) is not None
        assert crm.get_customer("C-1").name == NAME


def test_concurrent_key_creation_agrees_on_one_key(store_url: str) -> None:
    config = parse_store_url(store_url)
    with CRM(store_url):  # creates the tables
        pass
    one, two = SqlKeyStore(config), SqlKeyStore(config)
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
    keys = _ErasedWhileRead(parse_store_url(store_url))
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
