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
    with pytest.raises(DataError, match=r"cut\.gz:\d+: truncated gzip after line"):
        binance.read([path], progress=False)
    (c,) = binance.read([path], repair=True, progress=False)
    assert c.repairs.counts["truncated_gzip"] == 1
    assert c.tables["book_snapshot"].num_rows > 0


def test_a_corrupt_gzip_is_refused_even_when_repairing(samples, tmp_path):
    data = bytearray((samples / USDM).read_bytes())
    data[len(data) // 2] ^= 0x04
    path = tmp_path / "flip.gz"
    path.write_bytes(bytes(data))
    for repair in (False, True):
        with pytest.raises(DataError, match=r"flip\.gz:\d+: corrupt gzip"):
            binance.read([path], repair=repair, progress=False)


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
    u = message["data"]["u"]  # the crossing message and every later one are gone
    assert c.tables["book_delta"]["seq"].to_numpy().max() < u
    assert c.tables["book_snapshot"]["seq"].to_numpy().max() < u


def edited(line: bytes, edit) -> bytes:
    """``line`` with ``edit(message)`` applied to its JSON."""
    local, body = line.split(b" ", 1)
    message = orjson.loads(body)
    edit(message)
    return local + b" " + orjson.dumps(message)


def stream_lines(lines: list[bytes], stream: str) -> list[int]:
    return [i for i, line in enumerate(lines) if stream.encode() in line[:60]]


@pytest.mark.parametrize(("key", "value"), [("p", "-61800.20"), ("p", "0"), ("q", "1e20")])
def test_an_implausible_trade_price_or_size(samples, tmp_path, key, value):
    lines = lines_of(samples / USDM)
    i = stream_lines(lines, "@trade")[12]
    lines[i] = edited(lines[i], lambda m: m["data"].update({key: value}))
    path = write(tmp_path / "trade.gz", lines)
    with pytest.raises(DataError, match=rf"trade\.gz:{i + 1}: implausible"):
        binance.read([path], progress=False)
    (c,) = binance.read([path], repair=True, progress=False)
    assert c.repairs.counts == {"implausible_value": 1}
    assert c.tables["trades"].num_rows == 568


@pytest.mark.parametrize(("change", "match"), [
    (lambda t: t * 1000, "implausible exchange_ts"), (lambda t: 0, "implausible exchange_ts"),
    (lambda t: -t, "implausible exchange_ts"), (lambda t: t + 3_600_000, "3601.27 s apart"),
])
def test_an_implausible_trade_time(samples, tmp_path, change, match):
    lines = lines_of(samples / USDM)
    i = stream_lines(lines, "@trade")[12]
    lines[i] = edited(lines[i], lambda m: m["data"].update(T=change(m["data"]["T"])))
    path = write(tmp_path / "trade.gz", lines)
    with pytest.raises(DataError, match=rf"trade\.gz:{i + 1}: .*{match}"):
        binance.read([path], progress=False)
    (c,) = binance.read([path], repair=True, progress=False)
    assert c.tables["trades"].num_rows == 568


@pytest.mark.parametrize(("edit", "error", "match"), [
    ({"b": "0"}, DataError, "implausible bid_price 0.0"),
    ({"A": "-2.5"}, DataError, "implausible ask_size -2.5"),
    ({"b": "61900.00"}, CrossedBook, "crossed book: best bid 61900.0 >= best ask"),
])
def test_an_implausible_or_crossed_bookticker(samples, tmp_path, edit, error, match):
    lines = lines_of(samples / USDM)
    i = stream_lines(lines, "@bookTicker")[40]
    lines[i] = edited(lines[i], lambda m: m["data"].update(edit))
    path = write(tmp_path / "ticker.gz", lines)
    with pytest.raises(error, match=rf"ticker\.gz:{i + 1}: {match}"):
        binance.read([path], progress=False)
    (c,) = binance.read([path], repair=True, progress=False)
    assert c.tables["bbo"].num_rows == 3116
    assert c.tables["book_snapshot"].num_rows == 310  # the book still agrees


def test_a_depth_diff_an_hour_late_in_exchange_time(samples, tmp_path):
    lines = lines_of(samples / USDM)
    i = depth_lines(lines)[20]
    lines[i] = edited(lines[i], lambda m: m["data"].update(
        T=m["data"]["T"] + 3_600_000, E=m["data"]["E"] + 3_600_000))
    path = write(tmp_path / "late.gz", lines)
    with pytest.raises(DataError, match=rf"late\.gz:{i + 1}: exchange_ts .* 3601.27 s apart"):
        binance.read([path], progress=False)
    (c,) = binance.read([path], repair=True, progress=False)
    assert c.repairs.counts == {"clock_offset": 1, "sequence_gap": 1}  # skipped: a gap


def top_changes(converted) -> list[tuple[int, float]]:
    """(u, best bid) of the book states whose best bid size differs from the state before."""
    snaps = converted.tables["book_snapshot"]
    bids = column_numpy(snaps["bid_price"])[:, 0]
    sizes = column_numpy(snaps["bid_size"])[:, 0]
    seq = snaps["seq"].to_numpy()
    changed = np.flatnonzero((np.diff(sizes) != 0) & (np.diff(bids) == 0)) + 1
    return [(int(seq[k]), float(bids[k])) for k in changed]


def test_a_changed_level_at_the_touch_disagrees_with_bookticker(samples, tmp_path):
    (clean,) = binance.read([samples / USDM], progress=False)
    u, best = top_changes(clean)[10]
    lines = lines_of(samples / USDM)
    i = next(k for k in depth_lines(lines) if f'"u":{u},'.encode() in lines[k])

    def grow(message):
        level = next(lv for lv in message["data"]["b"] if float(lv[0]) == best)
        level[1] = f"{float(level[1]) + 1.5:.3f}"

    lines[i] = edited(lines[i], grow)
    path = write(tmp_path / "touch.gz", lines)
    with pytest.raises(DataError, match=rf"touch\.gz:{i + 1}: the rebuilt book after this "
                                        rf"depth message \(u={u}\) disagrees with the latest "
                                        "bookTicker"):
        binance.read([path], progress=False)
    (c,) = binance.read([path], repair=True, progress=False)
    assert c.repairs.counts == {"book_mismatch": 1}
    assert c.tables["book_delta"]["seq"].to_numpy().max() < u  # no snapshot to resync on
    compared, same = bookticker_match(c)
    assert compared == same


def test_a_crossed_rest_snapshot_leaves_no_delta_without_a_base(samples, tmp_path):
    lines = lines_of(samples / USDM)
    i = next(k for k, line in enumerate(lines) if b"lastUpdateId" in line[:60])
    lines[i] = edited(lines[i], lambda m: m["bids"].insert(0, ["99999.00", "1.000"]))
    path = write(tmp_path / "snap.gz", lines)
    with pytest.raises(CrossedBook, match=rf"snap\.gz:{i + 1}: crossed REST snapshot"):
        binance.read([path], progress=False)
    (c,) = binance.read([path], repair=True, progress=False)
    assert c.repairs.counts == {"bad_snapshot": 1}
    assert c.tables["book_delta"].num_rows == c.tables["book_snapshot"].num_rows == 0
    assert c.stats["depth_dropped_before_snapshot"] == len(depth_lines(lines))
    assert c.tables["trades"].num_rows == 569  # the other streams stay


def test_a_rest_snapshot_level_of_size_zero_is_implausible(samples, tmp_path):
    lines = lines_of(samples / USDM)
    i = next(k for k, line in enumerate(lines) if b"lastUpdateId" in line[:60])
    lines[i] = edited(lines[i], lambda m: m["asks"][3].__setitem__(1, "0.000"))
    path = write(tmp_path / "snap.gz", lines)
    with pytest.raises(DataError, match=rf"snap\.gz:{i + 1}: depth level .* is implausible"):
        binance.read([path], progress=False)


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
