"""crm_es: an event-sourced CRM core.

``from crm_es import CRM`` gives the service layer; commands and events live in
``crm_es.domain.commands`` and ``crm_es.domain.events``. The names are loaded on first use, so
importing one module of the package (the command line, the bulk writer child) stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from crm_es.app.results import CommandResult
    from crm_es.app.service import CRM
    from crm_es.domain.errors import CrmError

__all__ = ["CRM", "CommandResult", "CrmError"]


def __getattr__(name: str) -> Any:
    if name == "CRM":
        from crm_es.app.service import CRM

        return CRM
    if name == "CommandResult":
        from crm_es.app.results import CommandResult

        return CommandResult
    if name == "CrmError":
        from crm_es.domain.errors import CrmError

        return CrmError
    raise AttributeError(f"module 'crm_es' has no attribute {name!r}")
