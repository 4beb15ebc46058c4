"""Binance raw websocket captures: sync, tables, bad input, and the book vs bookTicker."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import orjson
import pytest

from makerlab.data.arrays import column_numpy
from makerlab.data.convert import binance
from makerlab.data.schema import FLAG_SNAPSHOT
from makerlab.data.validate import book_ticker_agreement
from makerlab.errors import CrossedBook, DataError, SequenceGap, UnsortedData

USDM = "binance/usdm_btcusdt_20240808_head.gz"
SPOT = "binance/spot_btcusdt_20240808_head.gz"
BUNDLED = Path(__file__).resolve().parents[2] / "data" / "raw" / "binance"


def bookticker_match(converted) -> tuple[int, int]:
    """(compared, matching) book states vs bookTicker (the converter's own rule, see
    ``book_ticker_agreement``)."""
    snaps, bbo = converted.tables["book_snapshot"], converted.tables["bbo"]
    names = ("bid_price", "bid_size", "ask_price", "ask_size")
    top = np.column_stack([column_numpy(snaps.column(name))[:, 0] for name in names])
    quotes = np.column_stack([bbo.column(name).to_numpy() for name in names])
    compared, agrees, _ = book_ticker_agreement(snaps.column("seq").to_numpy(), top,
                                                bbo.column("seq").to_numpy(), quotes)
    return int(compared.sum()), int(agrees.sum())


def lines_of(path: Path) -> list[bytes]:
    return gzip.open(path).read().splitlines()


def write(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(gzip.compress(b"\n".join(lines) + b"\n"))
    return path


def depth_lines(lines: list[bytes]) -> list[int]:
    return [i for i, line in enumerate(lines) if b"@depth" in line[:60]]


def test_usdm_sample_converts_and_matches_bookticker(samples):
    (c,) = binance.read([samples / USDM], progress=False)
    assert (c.exchange, c.symbol) == ("binance", "BTCUSDT")
    deltas = c.tables["book_delta"]
    flags = deltas.column("flags").to_numpy()
    assert flags[:2000].tolist() == [FLAG_SNAPSHOT] * 2000 and not flags[2000:].any()
    assert (np.diff(deltas.column("local_ts").to_numpy()) >= 0).all()
    assert c.tables["book_snapshot"].num_rows == c.stats["depth_messages_applied"] + 1
    trades = c.tables["trades"]
    assert set(trades.column("side").to_numpy()) == {-1, 1}
    compared, same = bookticker_match(c)
    assert compared > 250 and same == compared


def test_spot_sample_uses_local_clock_for_bookticker(samples):
    (c,) = binance.read(samples / SPOT, progress=False)
    assert c.exchange == "binance_spot"
    bbo = c.tables["bbo"]
    assert bbo.column("exchange_ts").equals(bbo.column("local_ts"))
    assert b"makerlab.clock" in bbo.schema.metadata
    assert c.tables["book_delta"].column("prev_seq").to_numpy().max() == -1
    compared, same = bookticker_match(c)
    assert compared > 100 and same == compared


def test_exchange_override_and_symbol_filter(samples):
    (c,) = binance.read([samples / USDM], exchange="my_venue", symbol="btcusdt", progress=False)
    assert c.exchange == "my_venue"
    with pytest.raises(DataError, match="no messages for symbol"):
        binance.read([samples / USDM], symbol="ETHUSDT", progress=False)


def test_split_files_continue_one_another(samples, tmp_path):
    lines = lines_of(samples / USDM)
    a = write(tmp_path / "a_1.gz", lines[:2500])
    b = write(tmp_path / "a_2.gz", lines[2500:])
    (whole,) = binance.read([samples / USDM], progress=False)
    (parts,) = binance.read([b, a], progress=False)  # ordered by first timestamp
    assert parts.tables["book_snapshot"].equals(whole.tables["book_snapshot"])
    gap, after = depth_lines(lines)[-20:-18]
    write(tmp_path / "a_2.gz", lines[2500:gap] + lines[gap + 1 :])
    with pytest.raises(SequenceGap, match=rf"a_2\.gz:{after - 2500}: .*expected pu="):
        binance.read([a, b], progress=False)


def test_gap_in_pu_chain_raises_and_repair_drops_until_snapshot(samples, tmp_path):
    lines = lines_of(samples / USDM)
    gap, after = depth_lines(lines)[40:42]  # the diff after the removed one breaks the chain
    path = write(tmp_path / "gap.gz", lines[:gap] + lines[gap + 1 :])
    with pytest.raises(SequenceGap, match=rf"gap\.gz:{after}: depth diff does not continue"):
        binance.read([path], progress=False)
    (c,) = binance.read([path], repair=True, progress=False)
    assert c.repairs.counts["sequence_gap"] == 1
    remaining = len([i for i in depth_lines(lines) if i > gap])
    assert c.stats["depth_dropped_after_gap"] == remaining
    assert c.tables["book_snapshot"].column("seq").to_numpy().max() < orjson.loads(
        lines[gap].split(b" ", 1)[1])["data"]["u"]


def test_corrupt_json_line(samples, tmp_path):
    lines = lines_of(samples / USDM)
    lines[99] = lines[99][:-30]
    path = write(tmp_path / "bad.gz", lines)
    with pytest.raises(DataError, match=r"bad\.gz:100: malformed line"):
        binance.read([path], progress=False)
    (c,) = binance.read([path], repair=True, progress=False)
    assert c.repairs.counts["malformed_line"] == 1


@pytest.mark.parametrize("stream, field", [("@trade", b'"T":'), ("@bookTicker", b'"u":'),
                                           ("@depth", b'"U":')])
def test_integer_too_large_for_int64_names_the_line(samples, tmp_path, stream, field):
    lines = lines_of(samples / USDM)
    i = next(k for k, line in enumerate(lines) if stream.encode() in line[:60])
    lines[i] = lines[i].replace(field, field + b"99999999", 1)
    path = write(tmp_path / "big.gz", lines)
    with pytest.raises(DataError, match=rf"big\.gz:{i + 1}: malformed line"):
        binance.read([path], progress=False)
    (c,) = binance.read([path], repair=True, progress=False)
    assert c.repairs.counts["malformed_line"] == 1


def test_non_numeric_price_names_the_line(samples, tmp_path):
    lines = lines_of(samples / USDM)
    i = depth_lines(lines)[10]
    message = orjson.loads(lines[i].split(b" ", 1)[1])
    message["data"]["b"][0][0] = "61k"
    lines[i] = lines[i].split(b" ", 1)[0] + b" " + orjson.dumps(message)
    path = write(tmp_path / "px.gz", lines)
    with pytest.raises(DataError, match=rf"px\.gz:{i + 1}: non-numeric"):
        binance.read([path], progress=False)
    (c,) = binance.read([path], repair=True, progress=False)
    assert c.repairs.counts["malformed_line"] == 1 and c.repairs.counts["sequence_gap"] == 1


def test_truncated_gzip(samples, tmp_path):
    data = (samples / USDM).read_bytes()
    path = tmp_path / "cut.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"cut\.gz:\d+: truncated or corrupt gzip after line"):
        binance.read([path], progress=False)
    (c,) = binance.read([path], repair=True, progress=False)
    assert c.repairs.counts["truncated_gzip"] == 1
    assert c.tables["book_snapshot"].num_rows > 0


def test_unsorted_local_timestamps(samples, tmp_path):
    lines = lines_of(samples / USDM)
    trade = [i for i, line in enumerate(lines) if b"@trade" in line[:60]][30]
    ts, rest = lines[trade].split(b" ", 1)
    lines[trade] = str(int(ts) - 10**9 // 2).encode() + b" " + rest  # half a second back
    path = write(tmp_path / "unsorted.gz", lines)
    with pytest.raises(UnsortedData, match=rf"unsorted\.gz:{trade + 1}: timestamp \d+ goes "):
        binance.read([path], progress=False)
    (c,) = binance.read([path], repair=True, progress=False)
    assert c.repairs.counts["unsorted"] == 1
    assert (np.diff(c.tables["trades"].column("local_ts").to_numpy()) >= 0).all()


def test_crossed_book_names_the_depth_line(samples, tmp_path):
    lines = lines_of(samples / USDM)
    i = depth_lines(lines)[30]
    message = orjson.loads(lines[i].split(b" ", 1)[1])
    message["data"]["b"].append(["99999.0", "1.000"])
    lines[i] = lines[i].split(b" ", 1)[0] + b" " + orjson.dumps(message)
    path = write(tmp_path / "cross.gz", lines)
    with pytest.raises(CrossedBook, match=rf"cross\.gz:{i + 1}: crossed book"):
        binance.read([path], progress=False)
    (c,) = binance.read([path], repair=True, progress=False)
    assert c.repairs.counts["crossed"] == 1


@pytest.mark.slow
def test_bundled_files_match_bookticker():
    files = sorted(BUNDLED.glob("*.gz"))
    assert len(files) == 4
    for converted in binance.read(files, progress=False):
        compared, same = bookticker_match(converted)
        assert compared > 3000 and same / compared >= 0.999, converted.summary()


@pytest.mark.shared_data
@pytest.mark.slow
def test_two_day_spot_capture_continues_and_matches(shared_data):
    folder = shared_data / "hftbacktest-binance"
    files = [folder / "spot_btcusdt_20240809.gz", folder / "spot_btcusdt_20240808.gz"]
    (c,) = binance.read(files, progress=False)
    assert c.stats.get("depth_dropped_after_gap", 0) == 0
    assert c.stats["depth_messages_applied"] == 3449 + 3044
    compared, same = bookticker_match(c)
    assert same / compared >= 0.999  # 2 known spot mismatches, see docs/convert.md
