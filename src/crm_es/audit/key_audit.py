"""Does each customer's key agree with its history? The key part of :func:`~.verify.verify`.

* An erased customer has no key (a key still there is an erasure to finish) and keeps its
  tombstone.
* Any other customer whose events hold encrypted values has a key, wrapped by this store for
  this customer (a clear key, or one wrapped for someone else, was written behind the store's
  back), and that key opens every encrypted value of the stream: a key replaced by another
  valid one would read nothing, and would read a planted secret to whoever planted it.

Values are looked for in the body the codec wrote, after undoing any compression or cipher
layer of the store's settings, so those settings hide no deleted key.
"""

from __future__ import annotations

from crm_es.audit.chains import Problem
from crm_es.audit.ledger import MATERIAL_HIDDEN, CustomerFacts
from crm_es.domain import events as ev
from crm_es.domain.errors import PersonalDataUnreadable
from crm_es.store.keys import SqlKeyStore
from crm_es.store.personal_data import TOKEN_PREFIX
from crm_es.store.store import Store

_TOKEN = TOKEN_PREFIX.encode()
# A store setting named so (then the customer id), sealed with the store's secret: the customer
# was erased in the store an audit import came from, after the cut of its export, so its key
# is gone while the imported history holds no erasure.
ERASED_IN_SOURCE = "erased_in_source:"


def erased_in_source(store: Store) -> frozenset[str]:
    """The customers an audit import found erased after its export's cut (sealed marks only:
    read before the verification's pass)."""
    return frozenset(
        cid
        for name, mark in store.settings.items(ERASED_IN_SOURCE)
        if mark == store.secrets.seal(cid := name[len(ERASED_IN_SOURCE) :])
    )


def key_problems(
    store: Store, facts: CustomerFacts, erased_elsewhere: frozenset[str] = frozenset()
) -> list[Problem]:
    """``erased_elsewhere``: :func:`erased_in_source`."""
    cid, last = str(facts.customer_id), facts.events[-1].version if facts.events else 0
    erasures = [e for e in facts.events if e.topic == ev.PersonalDataErased.TOPIC]
    if erasures:
        if facts.key is True:
            return [Problem(cid, last, "personal data erasure unfinished: the key still exists "
                            "(run `crm-es erase` again)")]  # fmt: skip
        if facts.key is None:
            return [Problem(cid, erasures[0].version, "the erased customer's key record was "
                            "deleted (its tombstone is missing)")]  # fmt: skip
        return []
    sealed = [e for e in facts.events if _TOKEN in store.codec.body_of(e.state)]
    if facts.key is not True:
        if sealed and not (facts.key is False and cid in erased_elsewhere):
            return [Problem(cid, last, "the key was deleted without a PersonalDataErased event: "
                            "the encrypted personal data can no longer be read")]  # fmt: skip
        return []
    keys = store.personal_data.keys
    material = facts.key_material or ""
    hidden = material == MATERIAL_HIDDEN  # opened below through the logged key function
    if (
        isinstance(keys, SqlKeyStore)
        and not hidden
        and not keys.unwraps(facts.customer_id, material)
    ):
        return [Problem(cid, last, "the key is not one this store wrapped for this customer "
                        "(written, copied or replaced behind the store's back)")]  # fmt: skip
    for row in sealed:
        try:
            store.codec.decode_state(row.topic, row.state)
        except PersonalDataUnreadable:
            return [Problem(cid, row.version, "the key does not open the customer's encrypted "
                            "personal data (replaced behind the store's back)")]  # fmt: skip
    return []
