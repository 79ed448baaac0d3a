"""The auditor's room: history with summaries, states as of a time, verification, export and
import. Depends on :mod:`crm_es.store` and :mod:`crm_es.domain`."""
