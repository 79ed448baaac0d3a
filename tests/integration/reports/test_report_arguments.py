"""The report API refuses an argument outside what its report means with a CrmError naming the
argument and what it takes, as the command line's options do: never a KeyError or an
OverflowError from deep inside, never a report of a negative window."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from crm_es import CRM
from crm_es.domain.errors import CrmError
from crm_es.reports import Reports

CASES: dict[str, tuple[Callable[[Reports], Any], str]] = {
    "value time unit": (lambda r: r.value(time_unit="fortnight"), "time_unit.*day, week"),
    "contacts idle -1": (lambda r: r.contacts(idle_days=-1), "idle_days.*1 to 36500"),
    "contacts idle 10**30": (lambda r: r.contacts(idle_days=10**30), "idle_days.*1 to 36500"),
    "drivers churn 0": (lambda r: r.drivers(churn_days=0), "churn_days.*1 to 3650"),
    "drivers churn 10**30": (lambda r: r.drivers(churn_days=10**30), "churn_days.*1 to 3650"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_an_argument_out_of_range_is_an_error_naming_what_it_takes(
    store_url: str, case: str
) -> None:
    call, message = CASES[case]
    with CRM(store_url) as crm:
        crm.register_customer(external_ref="C-1")
        crm.record_purchase(customer="C-1", order_id="O-1", amount="10.00", currency="CNY")
        with Reports(crm) as reports, pytest.raises(CrmError, match=message):
            call(reports)
