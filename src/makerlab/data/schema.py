"""The archive's record kinds and their Arrow schemas: the contract between converters,
the archive writer/reader and the replay engine.

Conventions shared by every kind:

- ``exchange_ts``: the venue's event time; ``local_ts``: when the recorder received the
  message. Both int64 nanoseconds since the Unix epoch (UTC). When a source has only one
  clock, both columns hold it and the file metadata says so (``makerlab.clock``).
- Prices in quote currency, sizes in the venue's quantity unit (base asset, or contracts
  for inverse products), both float64.
- ``side``: int8, ``+1`` bid / taker buy, ``-1`` ask / taker sell, ``0`` unknown.
- Rows are sorted by ``local_ts`` (the order the recorder saw them; for book deltas this is
  also update-id order).

Kinds:

``book_delta``
    One row per price-level change. Rows of one venue message share ``exchange_ts``,
    ``local_ts`` and ``seq`` (the message's last update id); ``first_seq``/``prev_seq`` keep
    the venue's other sequence fields (``U``/``pu`` on Binance; ``-1`` when absent).
    ``size`` is the new total size at that price; ``0`` deletes the level. Rows flagged
    ``FLAG_SNAPSHOT`` belong to a full snapshot that replaces the book: the book is cleared
    at the first snapshot row of a message.
``book_snapshot``
    One row per book state: the top ``depth`` levels per side as fixed-size lists, best
    first (bids descending, asks ascending). Missing levels are NaN.
``trades``
    One row per trade print, with the aggressor ``side`` and the venue's ``trade_id``.
``bbo``
    Best bid and offer updates, as the venue pushed them.
"""

from __future__ import annotations

import pyarrow as pa

SCHEMA_VERSION = "1"

BOOK_DELTA = "book_delta"
BOOK_SNAPSHOT = "book_snapshot"
TRADES = "trades"
BBO = "bbo"
KINDS = (BOOK_DELTA, BOOK_SNAPSHOT, TRADES, BBO)

FLAG_SNAPSHOT = 1  # the row belongs to a full-book snapshot
NO_SEQ = -1

CLOCK_KEY = b"makerlab.clock"
#: ``makerlab.clock`` of data recorded from a replayed market (the paper exchange): the
#: exchange times are the replayed capture's, the local times when it was received, so
#: the two clocks are a constant distance apart rather than close.
REPLAYED_CLOCK = b"replayed: exchange_ts from the replayed capture, local_ts at receipt"


def replayed_clock(metadata: dict[bytes, bytes] | None) -> bool:
    """True for a table whose ``makerlab.clock`` says it was recorded from a replay."""
    return (metadata or {}).get(CLOCK_KEY, b"").startswith(b"replayed")

BOOK_DELTA_SCHEMA = pa.schema(
    [
        ("exchange_ts", pa.int64()),
        ("local_ts", pa.int64()),
        ("seq", pa.int64()),
        ("first_seq", pa.int64()),
        ("prev_seq", pa.int64()),
        ("side", pa.int8()),
        ("price", pa.float64()),
        ("size", pa.float64()),
        ("flags", pa.uint8()),
    ]
)

TRADES_SCHEMA = pa.schema(
    [
        ("exchange_ts", pa.int64()),
        ("local_ts", pa.int64()),
        ("price", pa.float64()),
        ("size", pa.float64()),
        ("side", pa.int8()),
        ("trade_id", pa.string()),
    ]
)

BBO_SCHEMA = pa.schema(
    [
        ("exchange_ts", pa.int64()),
        ("local_ts", pa.int64()),
        ("seq", pa.int64()),
        ("bid_price", pa.float64()),
        ("bid_size", pa.float64()),
        ("ask_price", pa.float64()),
        ("ask_size", pa.float64()),
    ]
)


def book_snapshot_schema(depth: int) -> pa.Schema:
    """Schema of a ``book_snapshot`` table holding ``depth`` levels per side."""
    levels = pa.list_(pa.float64(), depth)
    return pa.schema(
        [
            ("exchange_ts", pa.int64()),
            ("local_ts", pa.int64()),
            ("seq", pa.int64()),
            ("bid_price", levels),
            ("bid_size", levels),
            ("ask_price", levels),
            ("ask_size", levels),
        ]
    )


def schema_for(kind: str, depth: int | None = None) -> pa.Schema:
    """The Arrow schema of ``kind`` (``depth`` is required for ``book_snapshot``)."""
    if kind == BOOK_SNAPSHOT:
        if not depth or depth < 1:
            raise ValueError("book_snapshot needs a positive depth")
        return book_snapshot_schema(depth)
    schemas = {BOOK_DELTA: BOOK_DELTA_SCHEMA, TRADES: TRADES_SCHEMA, BBO: BBO_SCHEMA}
    try:
        return schemas[kind]
    except KeyError:
        raise ValueError(f"unknown kind {kind!r}; expected one of {KINDS}") from None


def snapshot_depth(schema: pa.Schema) -> int:
    """Number of levels per side in a ``book_snapshot`` schema."""
    return schema.field("bid_price").type.list_size
