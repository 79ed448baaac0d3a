"""The list of read models the engine runs (one place to add a new one)."""

from __future__ import annotations

from crm_es.projections.models.care import Care
from crm_es.projections.models.contact_index import ContactIndex
from crm_es.projections.models.contacts import Contacts
from crm_es.projections.models.customers import Customers
from crm_es.projections.models.feedback import Feedback
from crm_es.projections.models.merges import Merges
from crm_es.projections.models.opportunities import Opportunities
from crm_es.projections.read_model import ReadModel


def read_models() -> list[ReadModel]:
    return [Customers(), Feedback(), Care(), Contacts(), Opportunities(), ContactIndex(), Merges()]
