"""Who may do what: the one place that decides every command and every query (权限管理).

Three questions, each answered here and nowhere else:

- :func:`check_command` — may this principal send this command to this customer?
- :func:`check_customer_read` — may it read this customer (``show``, as-of, ``history``,
  ``subject``), and does it see the personal data or a mask?
- :func:`check_store_action` — may it run this store-wide action (reports, verify, export,
  import, maintain, projections, the access log)?

A refusal raises :class:`~crm_es.domain.errors.PermissionDenied` naming the principal, the
action and the customer; the caller has stored and shown nothing. Roles add up: a principal with
two roles may do what either may.
"""

from __future__ import annotations

from typing import Final, Literal

from crm_es.domain import commands as cmd
from crm_es.domain.errors import PermissionDenied
from crm_es.domain.principals import Principal, Role

CustomerRead = Literal["read_customer", "history", "subject"]
StoreAction = Literal[
    "report", "verify", "export", "import", "maintain", "projections", "access_log",
    "change_settings",
]  # fmt: skip

# Store-wide actions, by role. Export carries personal data in clear (and the customers' keys):
# an auditor exports only with the PII grant.
_STORE_ACTIONS: Final[dict[Role, frozenset[str]]] = {
    Role.ADMIN: frozenset({"report", "verify", "export", "import", "maintain", "projections",
                           "access_log", "change_settings"}),
    Role.MANAGER: frozenset({"report"}),
    Role.STAFF: frozenset({"report"}),
    Role.ANALYST: frozenset({"report"}),
    Role.AUDITOR: frozenset({"verify", "export", "access_log"}),
    Role.PRIVACY_OFFICER: frozenset({"access_log"}),
    Role.INTEGRATION: frozenset(),
}  # fmt: skip

# Commands only the privacy officer (or an admin) sends.
_PRIVACY_COMMANDS: Final = frozenset({"erase_personal_data", "change_consent"})
_NEVER_INTEGRATION: Final = frozenset({"erase_personal_data"})
# Goals of the customer-management plan: set by managers (and admins), for the whole store.
_PLAN_COMMANDS: Final = frozenset({"set_goal", "revise_goal", "close_goal"})


def command_type(command: cmd.Command) -> str:
    tag = type(command).__struct_config__.tag
    return str(tag)


def _in_scope(p: Principal, owner: str | None) -> bool:
    """Whether a customer owned by ``owner`` is one the principal works on: its own, its team's
    (a manager's), or the unowned pool."""
    if owner is None:
        return p.has(Role.STAFF) or p.has(Role.MANAGER)
    if p.has(Role.MANAGER) and (owner in p.team or owner == p.owner_id):
        return True
    return p.has(Role.STAFF) and owner == p.owner_id


def _may_own(p: Principal, new_owner: str | None) -> bool:
    """Whether the principal may give a customer to ``new_owner``."""
    if p.has(Role.MANAGER) and (
        new_owner is None or new_owner in p.team or new_owner == p.owner_id
    ):
        return True
    return p.has(Role.STAFF) and new_owner == p.owner_id


def check_command(
    p: Principal, command: cmd.Command, owner: str | None, exists: bool, *, replay: bool = False
) -> None:
    """Raise PermissionDenied unless ``p`` may send ``command`` to a customer owned by
    ``owner`` (``exists``: registered already). ``replay``: the command is done already and
    only answered from the log, so whom it names as actor records nothing (a command stored
    by an earlier version with its payload's actor is still answered as done)."""
    kind = command_type(command)
    customer = getattr(command, "customer", None) or getattr(command, "external_ref", None)
    if not replay:
        _check_actor(p, command, kind, customer)
    if p.has(Role.ADMIN):
        return
    if kind in _PRIVACY_COMMANDS and p.has(Role.PRIVACY_OFFICER):
        return
    if p.has(Role.INTEGRATION) and kind in p.command_types and kind not in _NEVER_INTEGRATION:
        return
    if kind in _PLAN_COMMANDS:
        if p.has(Role.MANAGER):
            return
        raise PermissionDenied(p, f"send {kind}", None, "goals of the plan are set by managers "
                               "and admins")  # fmt: skip
    if kind not in _PRIVACY_COMMANDS and (p.has(Role.STAFF) or p.has(Role.MANAGER)):
        _check_scope(p, command, kind, customer, owner, exists)
        return
    raise PermissionDenied(p, f"send {kind}", customer)


def _check_actor(p: Principal, command: cmd.Command, kind: str, customer: object) -> None:
    if command.actor is not None and command.actor != p.name:
        raise PermissionDenied(
            p, f"record {kind} as actor {command.actor!r}", customer,
            "the actor is the authenticated principal (an integration names the person it "
            "acts for with on_behalf_of)",
        )  # fmt: skip
    if isinstance(command.on_behalf_of, str) and not p.has(Role.INTEGRATION):
        raise PermissionDenied(p, f"send {kind} on behalf of {command.on_behalf_of!r}", customer,
                               "only an integration acts on behalf of someone")  # fmt: skip


def _check_scope(
    p: Principal,
    command: cmd.Command,
    kind: str,
    customer: object,
    owner: str | None,
    exists: bool,
) -> None:
    """Staff and managers: their customers (a manager's: the team's) and the pool."""
    target_owner = _new_owner(command) if not exists else owner
    if exists and not _in_scope(p, owner):
        raise PermissionDenied(p, f"send {kind}", customer, f"the customer is {owner}'s")
    if isinstance(command, cmd.MergeCustomers) and not p.has(Role.MANAGER) and owner != p.owner_id:
        # A merge cannot be undone: staff fold only their own customers, never the pool's.
        raise PermissionDenied(p, f"send {kind}", customer, "a merge cannot be undone: staff "
                               "merge only customers they own (both sides); a manager or an "
                               "admin merges the others")  # fmt: skip
    if isinstance(command, cmd.AssignOwner) and not _may_own(p, command.owner):
        raise PermissionDenied(p, f"give the customer to {command.owner}", customer)
    if not exists and not _may_own(p, target_owner) and target_owner is not None:
        raise PermissionDenied(p, f"register a customer for {target_owner}", customer)


def _new_owner(command: cmd.Command) -> str | None:
    return command.owner if isinstance(command, cmd.RegisterCustomer) else None


def check_customer_read(
    p: Principal, action: CustomerRead, owner: str | None, customer: object = None
) -> bool:
    """Raise PermissionDenied unless ``p`` may read the customer this way; True when it sees
    personal data, False when it sees it masked."""
    if p.has(Role.ADMIN) or p.has(Role.PRIVACY_OFFICER):
        return True
    if (p.has(Role.STAFF) or p.has(Role.MANAGER)) and action != "subject" and _in_scope(p, owner):
        return True
    if p.has(Role.AUDITOR) and action in ("read_customer", "history"):
        return p.pii
    why = (
        f"the customer is {owner}'s" if owner and (p.has(Role.STAFF) or p.has(Role.MANAGER)) else ""
    )
    raise PermissionDenied(p, _READ_WORDS[action], customer, why)


_READ_WORDS: Final[dict[str, str]] = {
    "read_customer": "read",
    "history": "read the history of",
    "subject": "answer a subject request for",
}


def check_store_action(p: Principal, action: StoreAction) -> None:
    """Raise PermissionDenied unless ``p`` may run the store-wide ``action``."""
    for role in p.roles:
        if action in _STORE_ACTIONS[role]:
            if action == "export" and role is Role.AUDITOR and not p.pii:
                continue
            return
    why = (
        "an export holds personal data: the auditor needs the PII grant"
        if action == "export"
        else ""
    )
    raise PermissionDenied(p, action.replace("_", " "), None, why)


def check_personal_selection(p: Principal, field: str) -> None:
    """Raise PermissionDenied unless ``p`` may select customers by a personal ``field`` (a
    tag): the selection says who holds the value, so it reads that field of every customer,
    which only a principal reading every customer's personal data in clear may do."""
    if p.has(Role.ADMIN) or p.has(Role.PRIVACY_OFFICER):
        return
    raise PermissionDenied(
        p, f"select customers by {field}", None,
        f"{field}s are personal data, which it may not read of every customer",
    )  # fmt: skip


def finds_within_scope(p: Principal, field: str) -> bool:
    """May ``p`` look customers up by a personal ``field`` (a phone, an email: 客户识别)? An
    admin or privacy officer among every customer (False); staff and managers among the
    customers they work on (True: matches outside are left out unseen, so the answer tells
    them nothing of another owner's customers); anyone else is refused."""
    if p.has(Role.ADMIN) or p.has(Role.PRIVACY_OFFICER):
        return False
    if p.has(Role.STAFF) or p.has(Role.MANAGER):
        return True
    check_personal_selection(p, field)  # raises
    return False


def in_scope(p: Principal, owner: str | None) -> bool:
    """Whether a customer owned by ``owner`` is one ``p`` works on (its own, its team's, or
    the unowned pool)."""
    return _in_scope(p, owner)


def require_personal_selection(source: object, field: str) -> None:
    """:func:`check_personal_selection` for the principal of ``source``, when it has one."""
    principal = getattr(source, "principal", None)
    if isinstance(principal, Principal):
        check_personal_selection(principal, field)


def require(source: object, action: StoreAction) -> None:
    """Check ``action`` for the principal of ``source`` when it has one (a CRM opened for a
    principal); a bare store handed over by the embedding code is that code itself."""
    principal = getattr(source, "principal", None)
    if isinstance(principal, Principal):
        check_store_action(principal, action)
