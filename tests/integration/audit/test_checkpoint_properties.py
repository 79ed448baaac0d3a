"""Property: random histories with checkpoints taken at random moments verify; one random change
to a stored row, made behind the store's back, fails verification and names the customer."""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path
from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm_es import CRM, CrmError
from crm_es.audit.checkpoint_verify import verify_anchored
from crm_es.audit.checkpoints import anchor
from crm_es.domain import commands as cmd
from crm_es.domain.ids import customer_id_for_ref
from crm_es.store.keys import KEY_TABLE
from crm_es.store.recorders import COMMANDS_TABLE
from tests.helpers.postgres import drop_schema, new_postgres_url, require_postgres
from tests.helpers.raw_store import db_id, raw, table
from tests.helpers.strategies import command_strategy
from tests.helpers.tamper import flip_byte

REFS = ("P-1", "P-2", "P-3")
MUTATIONS = ("flip", "delete_event", "delete_snapshot", "delete_record", "delete_key", "hash")

steps = st.lists(
    st.tuples(st.sampled_from(REFS), command_strategy(), st.booleans()), min_size=3, max_size=25
)


def _store(kind: str) -> tuple[str, str | None]:
    if kind == "sqlite":
        return f"sqlite:///{Path(tempfile.mkdtemp()) / 'crm.db'}", None
    require_postgres()
    return new_postgres_url()


def _fill(crm: CRM, key: Any, history: list[tuple[str, dict[str, Any], bool]]) -> list[Any]:
    anchors = []
    for ref in REFS:
        crm.register_customer(external_ref=ref, name=f"客户 {ref}", command_id=f"reg-{ref}")
    for i, (ref, fields, checkpoint) in enumerate(history):
        # a command refused by the schema or by a rule stores nothing
        with contextlib.suppress(CrmError, msgspec.ValidationError):
            crm.execute(msgspec.convert({**fields, "customer": ref, "command_id": f"c-{i}"},
                                        cmd.AnyCommand))  # type: ignore[arg-type]  # fmt: skip
        if checkpoint:
            anchors.append(anchor(crm, key))
    anchors.append(anchor(crm, key))  # and one of everything
    return anchors


def _mutate(url: str, what: str, ref: str, version: int) -> bool:
    """Change one stored row of ``ref``; False when there is no such row to change."""
    cid = db_id(url, ref)
    if what == "flip":
        flip_byte(url, ref, version)
    elif what == "delete_event":
        raw(url, f"DELETE FROM {table(url)} WHERE originator_id = ? AND originator_version = ?",
            (cid, version))  # fmt: skip
    elif what == "delete_snapshot":
        rows = raw(url, f"SELECT originator_version FROM {table(url, 'snapshots')} "
                   "WHERE originator_id = ?", (cid,))  # fmt: skip
        if not rows:
            return False
        raw(url, f"DELETE FROM {table(url, 'snapshots')} WHERE originator_id = ?", (cid,))
    elif what == "delete_record":
        raw(url, f"DELETE FROM {COMMANDS_TABLE} WHERE command_id = ?", (f"reg-{ref}",))
    elif what == "delete_key":
        raw(url, f"DELETE FROM {KEY_TABLE} WHERE customer_id = ?", (str(customer_id_for_ref(ref)),))
    else:
        raw(url, f"UPDATE {COMMANDS_TABLE} SET payload_hash = ? WHERE command_id = ?",
            (b"\x01" + bytes(32), f"reg-{ref}"))  # fmt: skip
    return True


def _run(kind: str, data: st.DataObject) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    history = data.draw(steps)
    key = Ed25519PrivateKey.generate()
    url, schema = _store(kind)
    try:
        with CRM(url, snapshot_interval=3) as crm:
            anchors = _fill(crm, key, history)
            report = verify_anchored(crm, anchors, key.public_key())
            assert report.ok, report.problems
            heads = {ref: crm.get_customer(ref).version for ref in REFS}
        ref = data.draw(st.sampled_from(REFS))
        what = data.draw(st.sampled_from(MUTATIONS))
        version = data.draw(st.integers(1, heads[ref]))
        if not _mutate(url, what, ref, version):
            return
        with CRM(url) as crm:
            after = verify_anchored(crm, anchors, key.public_key())
        assert not after.ok, (what, ref, version)
        assert str(customer_id_for_ref(ref)) in {p.customer_id for p in after.problems}
    finally:
        if schema is not None:
            drop_schema(schema)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_random_histories_verify_and_any_one_change_is_named_on_sqlite(data: st.DataObject) -> None:
    _run("sqlite", data)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_random_histories_verify_and_any_one_change_is_named_on_postgres(
    data: st.DataObject,
) -> None:
    _run("postgres", data)
