"""Buyers drawn from the value models' own generative processes, for report and CLI tests.

A dozen hand-made buyers never give the BG/NBD and Gamma-Gamma fits a proper maximum (too
little heterogeneity: the parameters run off to infinity); these give both enough to converge.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, timedelta

import numpy as np

from crm_es import CRM
from crm_es.domain.commands import decode_command


def at(day: str, hour: int = 10) -> str:
    return f"{day}T{hour:02d}:00:00+00:00"


def simulated_lines(
    n: int, seed: int, until: str, owners: tuple[str, ...] = (), prefix: str = "S-"
) -> Iterator[str]:
    """``n`` customers, each a buyer from a day of 2025's second half to ``until``, as JSON
    command lines: purchases in days as the BG/NBD draws them (rate ~ Gamma(1, 40 days), drop
    out after a repeat purchase with p ~ Beta(1, 4)), values as the Gamma-Gamma draws them
    (Gamma(4, ν) yuan, ν ~ Gamma(5, rate 400): a mean of 400); owned by ``owners`` in turn."""
    rng = np.random.default_rng(seed)
    end = date.fromisoformat(until)
    for i in range(n):
        ref, rate, dropout = f"{prefix}{i}", rng.gamma(1.0, 1 / 40), rng.beta(1.0, 4.0)
        nu = rng.gamma(5.0, 1 / 400)
        start = date(2025, 7, 1) + timedelta(days=int(rng.integers(0, 180)))
        owner = {"owner": owners[i % len(owners)]} if owners else {}
        yield json.dumps({"type": "register_customer", "external_ref": ref, **owner,
                          "occurred_at": at("2025-06-01")})  # fmt: skip
        day, k = 0.0, 0
        while start + timedelta(days=int(day)) <= end:
            amount = max(1, round(float(rng.gamma(4.0, 1 / nu))))
            on = (start + timedelta(days=int(day))).isoformat()
            yield json.dumps({"type": "record_purchase", "customer": ref, "order_id": f"O-{k}",
                              "amount": str(amount), "currency": "CNY",
                              "occurred_at": at(on)})  # fmt: skip
            day, k = day + rng.exponential(1 / rate), k + 1
            if k > 1 and rng.random() < dropout:
                break


def add_simulated_buyers(
    crm: CRM, n: int, seed: int, until: str, owners: tuple[str, ...] = ()
) -> None:
    """Store :func:`simulated_lines` through the bulk path (one transaction per chunk)."""
    commands = [decode_command(line) for line in simulated_lines(n, seed, until, owners)]
    for outcome in crm.execute_many(commands):
        assert not isinstance(outcome, Exception), outcome
