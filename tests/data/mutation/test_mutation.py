"""The mutation campaign in the test suite: two seeds per kind and capture, strict and
repairing. ``python -m tests.data.mutation --seeds 20`` runs a larger one."""

from __future__ import annotations

import pytest

from .harness import FAILURES, run
from .mutations import MUTATIONS

SEEDS = range(2)


@pytest.fixture(scope="module")
def report():
    return run(SEEDS)


@pytest.mark.parametrize("outcome", FAILURES)
def test_no_mutation_crashes_or_converts_silently_wrong(report, outcome):
    failures = [line for line in report.failures if f": {outcome}: " in line]
    assert not failures, report.table() + "\n" + "\n".join(failures)


def test_every_converter_meets_every_mutation(report):
    tried = {(converter, kind) for (_, converter, kind, _) in report.counts}
    for converter in ("binance", "tardis", "hyperliquid", "lobster"):
        kinds = set(MUTATIONS) - ({"misalign"} if converter != "lobster" else set())
        assert {kind for c, kind in tried if c == converter} == kinds, converter


def test_strict_mode_refuses_what_it_cannot_vouch_for(report):
    refused = report.total("clean", "strict")
    assert refused > report.total("different", "strict")
    assert report.total("clean", "repair") < refused  # repair mends most of them
