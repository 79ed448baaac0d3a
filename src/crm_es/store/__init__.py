"""Persistence: store URLs, SQL, the stored byte layout, the event store, recorders, keys.

Depends on :mod:`crm_es.domain` only. Kept free of imports here, so that a module of this
package (the bulk writer child's :mod:`~crm_es.store.bulk_copy`) loads without the others.
"""
