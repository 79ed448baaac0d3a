"""Realistic demo data: a deterministic stream of CRM commands (:mod:`.generator`)."""
