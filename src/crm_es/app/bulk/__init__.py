"""The bulk path: many commands, one transaction per chunk, saves pipelined through a writer
process. :func:`execute_many` is what ``CRM.execute_many`` runs."""

from crm_es.app.bulk.pipeline import execute_many

__all__ = ["execute_many"]
