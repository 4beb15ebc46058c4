"""quantpylib archives: converted into makerlab's archive, and read in place by the Feed.

The archives are written here as quantpylib's docs describe them (one parquet file per feed
and UTC hour, ``{exc}/{feed_cls}/{l2book|trades}/{yyyy}/{mm}/{ticker}[_depth20]_{ddhh}``,
books ``ts, bp, bs, ap, as`` and trades ``ts, price, size, dir``, ``ts`` in ms), from the
bundled Binance data.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from makerlab.cli import main
from makerlab.data.arrays import load_snapshot_arrays, load_trade_arrays
from makerlab.data.convert import quantpylib
from makerlab.data.validate import validate_archive
from makerlab.errors import CrossedBook, DataError, UnsortedData
from makerlab.sim import Replayer
from makerlab.trading.feed import Feed, FeedCls, archive_exchange

REPO = Path(__file__).resolve().parents[2]
ARCHIVE = REPO / "data" / "archive"
HOUR = "2024-08-08:23"
FOLDERS = {"binance": ("binance", "perp"), "binance_spot": ("binance", "spot")}
MS = 1_000_000

pytestmark = pytest.mark.skipif(not (ARCHIVE / "kind=book_snapshot").is_dir(),
                                reason="bundled archive data/archive absent")


def hour_path(root: Path, exchange: str, kind: str, name: str, hour_ms: int,
              year_digits: int = 4) -> Path:
    venue, cls = FOLDERS[exchange]
    t = pd.Timestamp(hour_ms, unit="ms", tz="UTC")
    year = f"{t:%Y}" if year_digits == 4 else f"{t:%y}"
    path = root / venue / cls / kind / year / f"{t:%m}" / f"{name}_{t:%d%H}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def book_frame(exchange: str) -> pd.DataFrame:
    """The bundled depth-20 states as quantpylib's rows: ts (ms) and four list columns."""
    books = load_snapshot_arrays(ARCHIVE, exchange, "BTCUSDT", 20)
    return pd.DataFrame({"ts": books.exchange_ts // MS, "bp": list(books.bid_price),
                         "bs": list(books.bid_size), "ap": list(books.ask_price),
                         "as": list(books.ask_size)})


def trade_frame(exchange: str) -> pd.DataFrame:
    trades = load_trade_arrays(ARCHIVE, exchange, "BTCUSDT")
    return pd.DataFrame({"ts": trades.exchange_ts // MS, "price": trades.price,
                         "size": trades.size, "dir": trades.side.astype(float)})


def write_hours(root: Path, frame: pd.DataFrame, exchange: str, kind: str, name: str,
                year_digits: int = 4) -> list[Path]:
    paths = []
    for hour_ms, part in frame.groupby(frame.ts // 3_600_000 * 3_600_000):
        path = hour_path(root, exchange, kind, name, int(hour_ms), year_digits)
        part.to_parquet(path, index=False)
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def qdir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("quantpylib")
    for exchange in FOLDERS:
        write_hours(root, book_frame(exchange), exchange, "l2book", "BTCUSDT_depth20")
        write_hours(root, trade_frame(exchange), exchange, "trades", "BTCUSDT")
    return root


def assert_same_books(got: list[dict], expected: list[dict]) -> None:
    assert [b["ts"] for b in got] == [b["ts"] for b in expected]
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_array_equal(g["b"], e["b"])
        np.testing.assert_array_equal(g["a"], e["a"])


@pytest.mark.parametrize("exc", ["binance", "binance_spot"])
def test_the_feed_reads_a_quantpylib_archive_in_place(qdir, exc):
    books = Feed.load_lob_archives(exc, "BTCUSDT", 20, path=qdir, start=HOUR, end=HOUR)
    assert len(books) > 1000
    assert_same_books(books, Feed.load_lob_archives(exc, "BTCUSDT", 20, path=ARCHIVE,
                                                    start=HOUR, end=HOUR))
    trades = Feed.load_trade_archives(exc, "BTCUSDT", path=qdir, start=HOUR, end=HOUR)
    np.testing.assert_array_equal(trades, Feed.load_trade_archives(
        exc, "BTCUSDT", path=ARCHIVE, start=HOUR, end=HOUR))


def test_the_feed_spells_spot_as_quantpylib_does(qdir):
    spot = Feed.load_lob_archives("binance", "BTCUSDT", 10, feed_cls=FeedCls.SPOT, path=qdir,
                                  start=HOUR, end=HOUR)
    assert spot[0]["b"].shape == (10, 2)  # cut from the stored depth 20
    [path] = Feed.load_trade_archives("binance", "BTCUSDT", feed_cls=FeedCls.SPOT, path=qdir,
                                      start=HOUR, end=HOUR, only_paths=True)
    assert path.endswith("binance/spot/trades/2024/08/BTCUSDT_0823.parquet")
    for cls in FeedCls:
        assert quantpylib.exchange_id("binance", cls.value) == archive_exchange("binance", cls)


def test_hours_are_selected_from_the_file_names_both_ends_included(qdir):
    files = quantpylib.hour_files(qdir, "binance", "l2book", "BTCUSDT", "2024-08-08:22",
                                  "2024-08-09:00", 20)
    assert [f.name for f in files] == ["BTCUSDT_depth20_0823.parquet",
                                       "BTCUSDT_depth20_0900.parquet"]
    assert quantpylib.hour_files(qdir, "binance", "l2book", "BTCUSDT", "2024-08-09:01",
                                 "2024-08-09:05", 20) == []
    with pytest.raises(DataError, match="no l2book files of depth >= 50"):
        quantpylib.hour_files(qdir, "binance", "l2book", "BTCUSDT", HOUR, HOUR, 50)


def test_convert_imports_the_archive_with_one_clock(qdir, tmp_path, capsys):
    out = tmp_path / "archive"
    assert main(["convert", "quantpylib", str(qdir), "--out", str(out), "--quiet"]) == 0
    summary = capsys.readouterr().out
    assert "binance/BTCUSDT: book_snapshot 6,548, trades 21,313" in summary
    assert "binance_spot/BTCUSDT" in summary
    assert not validate_archive(out).problems
    for exc in FOLDERS:
        assert_same_books(Feed.load_lob_archives(exc, "BTCUSDT", 20, path=out, start=HOUR,
                                                 end=HOUR),
                          Feed.load_lob_archives(exc, "BTCUSDT", 20, path=ARCHIVE, start=HOUR,
                                                 end=HOUR))
    books = out / "kind=book_snapshot" / "depth=20" / "exchange=binance"
    table = pq.read_table(next(books.rglob("23.parquet")))
    assert b"one time per record" in table.schema.metadata[b"makerlab.clock"]
    np.testing.assert_array_equal(table.column("exchange_ts"), table.column("local_ts"))
    trades = pq.read_table(next((out / "kind=trades" / "exchange=binance").rglob("23.parquet")))
    assert trades.column("trade_id")[0].as_py() == "2024080823:1"


def test_the_tutorial_replays_a_quantpylib_archive(qdir):
    """sim_prepare as the tutorial writes it, on the quantpylib archive and on makerlab's:
    the same records give the same fills."""
    fills = [replay_quoting(qdir), replay_quoting(ARCHIVE)]
    assert len(fills[0]) > 0 and fills[0] == fills[1]


def replay_quoting(path: Path) -> list[tuple]:
    stream = {"binance": ["BTCUSDT"], "binance_spot": ["BTCUSDT"]}
    l2 = {e: {t: Feed.load_lob_archives(exc=e, ticker=t, depth=20, start=HOUR, end=HOUR,
                                        path=path) for t in ts} for e, ts in stream.items()}
    trades = {e: {t: Feed.load_trade_archives(exc=e, ticker=t, start=HOUR, end=HOUR,
                                              path=path) for t in ts} for e, ts in stream.items()}
    rep = Replayer(l2_data=l2, trade_data=trades, maker_fees=0.0, taker_fees=0.0,
                   latencies=dict.fromkeys(["req_private", "ack_private", "feed_private"], 0))
    oms = rep.get_oms()
    engine = rep.venue.engine("binance", "BTCUSDT")

    async def quote() -> None:
        await oms.cancel_order("binance", "BTCUSDT")
        for amount, price in ((Decimal("0.002"), engine.best(1)),
                              (Decimal("-0.002"), engine.best(-1))):
            if price == price:
                await oms.limit_order("binance", "BTCUSDT", amount, Decimal(repr(price)),
                                      tif="GTX")

    async def go() -> None:
        await oms.add_clock_callback(quote, interval_ms=2000)
        await rep.play(progress=False)

    asyncio.run(go())
    return [(f["ts"], f["price"], str(f["size"]), f["dir"]) for f in rep.fills]


# -- the format's documented variants --------------------------------------------------------

def flattened(frame: pd.DataFrame) -> pd.DataFrame:
    """One level per row, a state's rows sharing its ts (the 'flattened' reading)."""
    long = frame.explode(["bp", "bs", "ap", "as"], ignore_index=True)
    return long.astype({"bp": float, "bs": float, "ap": float, "as": float})


def test_flattened_level_columns_are_read_as_the_list_ones(tmp_path):
    frame = book_frame("binance").iloc[:50]
    write_hours(tmp_path / "lists", frame, "binance", "l2book", "BTCUSDT_depth20")
    write_hours(tmp_path / "flat", flattened(frame), "binance", "l2book", "BTCUSDT_depth20")
    lists, flat = (Feed.load_lob_archives("binance", "BTCUSDT", 20, path=tmp_path / name,
                                          start=HOUR, end=HOUR) for name in ("lists", "flat"))
    assert len(flat) == 50
    assert_same_books(flat, lists)


def test_two_digit_year_folders_and_float_ms_are_read(tmp_path):
    frame = trade_frame("binance").iloc[:20].astype({"ts": float})
    write_hours(tmp_path, frame, "binance", "trades", "BTCUSDT", year_digits=2)
    trades = Feed.load_trade_archives("binance", "BTCUSDT", path=tmp_path, start=HOUR, end=HOUR)
    np.testing.assert_array_equal(trades[:, 0], frame.ts.to_numpy())


def test_shorter_books_are_padded_to_the_stored_depth(tmp_path):
    frame = book_frame("binance").iloc[:3].copy()
    frame.at[1, "bp"], frame.at[1, "bs"] = frame.bp[1][:2], frame.bs[1][:2]
    write_hours(tmp_path, frame, "binance", "l2book", "BTCUSDT_depth20")
    [converted] = quantpylib.read(tmp_path, progress=False)
    assert converted.depth == 20
    assert Feed.load_lob_archives("binance", "BTCUSDT", 20, path=tmp_path, start=HOUR,
                                  end=HOUR)[1]["b"].shape == (2, 2)


# -- bad input: DataError naming the file and row, or a counted repair ------------------

SOURCE = "binance/perp/l2book/2024/08/BTCUSDT_depth20_0823.parquet"


def bad_books(tmp_path, change) -> Path:
    frame = book_frame("binance").iloc[:5].copy()
    frame = change(frame) if change is not None else frame
    write_hours(tmp_path, frame, "binance", "l2book", "BTCUSDT_depth20")
    return tmp_path


def set_row(row: int, **values):
    def change(frame: pd.DataFrame) -> pd.DataFrame:
        for name, value in values.items():
            frame.at[row, name] = value
        return frame

    return change


@pytest.mark.parametrize(("change", "error", "message"), [
    (lambda f: f.drop(columns="as"), DataError, f"{SOURCE}: column 'as' is missing"),
    (set_row(2, bs=np.ones(3)), DataError, f"{SOURCE}:3: bp has 20 levels but bs has 3"),
    (set_row(3, bp=np.full(20, 70_000.0) - np.arange(20)), CrossedBook, f"{SOURCE}:4: crossed"),
    (set_row(2, ts=1_723_161_256_000), UnsortedData, f"{SOURCE}:3: timestamp"),
    (set_row(0, bp=np.arange(25.0)[::-1] + 50_000, bs=np.ones(25)), DataError,
     f"{SOURCE}:1: more than the file's 20 levels"),
])
def test_bad_books_name_the_file_and_row(tmp_path, change, error, message):
    root = bad_books(tmp_path, change)
    with pytest.raises(error) as raised:
        quantpylib.read(root, progress=False)
    assert str(raised.value).startswith(message)
    with pytest.raises(error):  # reading in place checks as much
        Feed.load_lob_archives("binance", "BTCUSDT", 20, path=root, start=HOUR, end=HOUR)


def test_repair_cuts_too_deep_books_and_drops_crossed_ones(tmp_path):
    deep = set_row(0, bp=np.arange(25.0)[::-1] + 50_000, bs=np.ones(25))
    crossed = set_row(3, bp=np.full(20, 70_000.0) - np.arange(20))
    root = bad_books(tmp_path, lambda f: crossed(deep(f)))
    [converted] = quantpylib.read(root, repair=True, progress=False)
    assert converted.repairs.counts == {"too_deep": 1, "crossed": 1}
    assert converted.tables["book_snapshot"].num_rows == 4


def test_bad_trades_name_the_file_and_row(tmp_path):
    frame = trade_frame("binance").iloc[:6].copy()
    frame.at[4, "dir"] = 0.0
    frame.at[2, "size"] = -1.0
    write_hours(tmp_path, frame, "binance", "trades", "BTCUSDT")
    source = "binance/perp/trades/2024/08/BTCUSDT_0823.parquet"
    with pytest.raises(DataError, match=f"^{source}:3: implausible size -1.0"):
        quantpylib.read(tmp_path, progress=False)
    [converted] = quantpylib.read(tmp_path, repair=True, progress=False)
    assert converted.repairs.counts == {"implausible_value": 1, "bad_dir": 1}
    assert converted.tables["trades"].column("side").to_pylist()[3] == 0


def test_no_archive_files_is_a_config_error(tmp_path):
    from makerlab.errors import ConfigError

    (tmp_path / "notes.parquet").write_bytes(b"")
    with pytest.raises(ConfigError, match="no quantpylib archive files"):
        quantpylib.read(tmp_path, progress=False)
    assert not quantpylib.is_archive(tmp_path, "binance")
    assert not quantpylib.is_archive(ARCHIVE, "binance")  # makerlab's own layout
