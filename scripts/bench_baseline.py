"""The baseline the benchmarks compare against: the same commands through a plain ``eventsourcing``
application with the library's defaults (declarative Aggregate, JSON transcoder, no cache, no
snapshots). It records one event per command carrying the command's fields, and keeps a little
state (counts, points, paid), so it does the library's share of the work without our rules.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import msgspec
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event

from crm_es.domain import commands as cmd
from crm_es.domain.ids import customer_id_for_ref


class PlainCustomer(Aggregate):
    @staticmethod
    def create_id(ref: str) -> UUID:
        return customer_id_for_ref(ref)

    @event("Registered")
    def __init__(self, ref: str, fields: dict[str, Any]) -> None:
        self.ref = ref
        self.counts: dict[str, int] = {}
        self.points = 0

    @event("CommandApplied")
    def apply_command(self, kind: str, fields: dict[str, Any]) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + 1
        if kind == "grant_points":
            self.points += int(fields["points"])
        elif kind == "redeem_points":
            self.points -= int(fields["points"])


class PlainCRM(Application[UUID]):
    """Library defaults: no AGGREGATE_CACHE_MAXSIZE, no snapshots, JSON transcoder."""

    name = "plain"

    def handle(self, command: cmd.Command) -> None:
        fields = msgspec.to_builtins(command)
        if isinstance(command, cmd.RegisterCustomer):
            self.save(PlainCustomer(ref=command.external_ref or "", fields=fields))
            return
        assert isinstance(command, cmd.CustomerCommand)
        customer: PlainCustomer = self.repository.get(customer_id_for_ref(command.customer))
        customer.apply_command(kind=cmd.command_type_name(command), fields=fields)
        self.save(customer)
