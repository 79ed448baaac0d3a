"""Deciders: command + current state -> new events, or a CrmError. Pure: no I/O, no clock."""

from crm_es.domain.decide.decisions import decide
from crm_es.domain.decide.envelope import Envelope

__all__ = ["Envelope", "decide"]
