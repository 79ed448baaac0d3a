"""crm_es: an event-sourced CRM core.

``from crm_es import CRM`` gives the service layer; commands and events live in
``crm_es.domain.commands`` and ``crm_es.domain.events``.
"""

from crm_es.app.results import CommandResult
from crm_es.app.service import CRM
from crm_es.domain.errors import CrmError

__all__ = ["CRM", "CommandResult", "CrmError"]
