"""Realistic demo data: a deterministic stream of CRM commands (see :mod:`crm_es.demo.generator`)."""
