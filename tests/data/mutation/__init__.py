"""A seeded mutation harness for the converters (binance, tardis, hyperliquid, lobster).

Each case takes one of the bundled real captures in ``tests/samples``, applies one
mutation (:mod:`.mutations`: a dropped, duplicated or swapped line, a cut or corrupt file,
a NaN, zero, negative or huge value, a shifted timestamp, an id gap, a crossed book, a
blank or binary line, ...), converts it strictly and with ``repair=True``, and classifies
the outcome (:mod:`.harness`):

- ``clean``: a ``DataError`` naming an input file and a line;
- ``vague``: a makerlab error without them;
- ``crash``: any other exception (a warning counts: the harness turns them into errors);
- ``identical``: the same tables as the unmutated capture;
- ``different``: other tables that keep every invariant of :mod:`.invariants`;
- ``wrong``: other tables that break one: a silently wrong archive.

The invariants are written apart from the converters' checks, on purpose. Run
``python -m tests.data.mutation --seeds 20`` for a larger campaign than the test suite's.
"""
