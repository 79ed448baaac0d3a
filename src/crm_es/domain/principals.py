"""Who is asking: a principal and its roles (权限管理).

A :class:`Principal` is the authenticated caller a :class:`~crm_es.app.service.CRM` is opened
for; its ``name`` is the actor recorded on every event it causes (a command cannot name another
actor). What each role may do is decided in one place, :mod:`crm_es.domain.policy`.
"""

from __future__ import annotations

import enum
from typing import Final

import msgspec


class Role(enum.StrEnum):
    ADMIN = "admin"  # everything
    MANAGER = "manager"  # a team of owners: their customers and the unowned pool
    STAFF = "staff"  # the customers they own, and the unowned pool of their team
    ANALYST = "analyst"  # reports and aggregates, no personal data
    AUDITOR = "auditor"  # history, as-of, verify, export; personal data masked without PII
    PRIVACY_OFFICER = "privacy_officer"  # erasure, consent, access logs, subject requests
    INTEGRATION = "integration"  # commands of listed types, on behalf of a named person


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    """An authenticated caller.

    ``name`` is recorded as the actor (``user:li``, ``api:shop``); ``owner`` is the owner id the
    principal holds customers as (``staff:li``; defaults to ``staff:`` + the name's last part
    for staff); ``team`` the owner ids a manager leads; ``pii`` lets an auditor see personal
    data; ``command_types`` are the commands an integration may send (empty: none).
    """

    name: str
    roles: frozenset[Role]
    owner: str | None = None
    team: frozenset[str] = frozenset()
    pii: bool = False
    command_types: frozenset[str] = frozenset()

    def has(self, role: Role) -> bool:
        return role in self.roles

    @property
    def owner_id(self) -> str:
        """The owner id customers are assigned to for this principal."""
        return self.owner or "staff:" + self.name.rsplit(":", 1)[-1]

    def __str__(self) -> str:
        return f"{self.name} ({', '.join(sorted(self.roles)) or 'no role'})"


def admin(name: str) -> Principal:
    """The principal of a local command line (one user: the store's file is the boundary):
    every right, and it is the actor of what it records."""
    return Principal(name=name, roles=frozenset({Role.ADMIN}))


def embedded(name: str) -> Principal:
    """The principal of an application that embeds the CRM and authenticates its own users:
    every right, and it names the user it acts for (``on_behalf_of``), as an integration does."""
    return Principal(name=name, roles=frozenset({Role.ADMIN, Role.INTEGRATION}))


def parse_roles(text: str) -> frozenset[Role]:
    """``"staff,auditor"`` as roles; an unknown name is an error listing the known ones."""
    roles = set()
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        try:
            roles.add(Role(part))
        except ValueError:
            known = ", ".join(r.value for r in Role)
            raise ValueError(f"unknown role {part!r}; roles: {known}") from None
    return frozenset(roles)


MASKED: Final = "[masked]"
"""What a principal without the right to personal data sees in place of it."""
