"""``convert()`` writes all kinds of all instruments or none, and checks names and the
target before writing anything."""

from __future__ import annotations

import json
from pathlib import Path

import fsspec
import pytest
from test_archive import bbo_table, snapshot_table, trades_table, tree

from makerlab.cli import main
from makerlab.data import convert as convert_module
from makerlab.data.archive import read_table, write_table
from makerlab.data.convert import Converted, convert
from makerlab.data.storage import Root
from makerlab.errors import ConfigError, DataError


def fake_source(monkeypatch, results: list[Converted]) -> list[str]:
    """Make source 'fake' return ``results``; the returned list records each read."""
    reads: list[str] = []

    def read(inputs, **options):
        reads.append(inputs)
        return results

    monkeypatch.setattr(convert_module, "reader", lambda source: read)
    return reads


def two_instruments(symbol: str = "ETHUSDT") -> list[Converted]:
    tables = {"book_snapshot": snapshot_table(5), "trades": trades_table(), "bbo": bbo_table()}
    return [Converted("binance", "BTCUSDT", dict(tables), depth=5),
            Converted("binance", symbol, dict(tables), depth=5)]


@pytest.fixture
def archive(tmp_path) -> Path:
    """An archive holding an older capture of BTCUSDT trades."""
    write_table(tmp_path, "trades", "binance", "BTCUSDT", trades_table(7))
    return tmp_path


def test_convert_commits_every_kind_of_every_instrument_in_one_commit(archive, monkeypatch):
    fake_source(monkeypatch, two_instruments())
    convert("fake", ["capture"], archive)
    shards = list((archive / "_makerlab/manifest").rglob("date=*.json"))
    commits = [{c for c, info in json.loads(p.read_text())["commits"].items()
                if info["converter"] == "fake"} for p in shards]
    assert len(shards) == 10 and len(set.union(*commits)) == 1 and all(commits)


def test_convert_rejects_a_bad_symbol_before_writing_anything(archive, monkeypatch):
    fake_source(monkeypatch, two_instruments("BTC:USDT"))
    written = []
    real = Root.write_bytes
    monkeypatch.setattr(Root, "write_bytes",
                        lambda self, path, data: written.append(path) or real(self, path, data))
    before = tree(archive)
    with pytest.raises(ConfigError, match="symbol 'BTC:USDT' cannot be an archive directory"):
        convert("fake", ["capture"], archive)
    assert tree(archive) == before
    assert [p for p in written if "/.probe.tmp-" not in p] == []  # not even staged


def test_a_conversion_failing_midway_leaves_the_archive_as_it_was(archive, monkeypatch):
    results = two_instruments()
    table = results[1].tables["bbo"]
    results[1].tables["bbo"] = table.set_column(3, "bid_price", table.column(3).cast("float32"))
    fake_source(monkeypatch, results)
    before = tree(archive)
    with pytest.raises(DataError, match="'bid_price' has type float"):
        convert("fake", ["capture"], archive)
    assert tree(archive) == before


def test_a_read_only_kind_directory_changes_nothing(archive, monkeypatch, read_only_trades):
    # Books can be written, trades cannot: nothing at all may change.
    fake_source(monkeypatch, two_instruments())
    before = tree(archive)
    with pytest.raises(DataError, match=r"kind=trades/.*cannot write \(Permission denied\)"):
        convert("fake", ["capture"], f"rotrades://{archive}")
    assert tree(archive) == before
    assert read_table(archive, "trades", "binance", "BTCUSDT").equals(trades_table(7))


def test_a_read_only_target_is_a_config_error_before_the_capture_is_read(
        read_only_memory, monkeypatch, memory_root):
    write_table(memory_root, "trades", "binance", "BTCUSDT", trades_table(7))
    reads = fake_source(monkeypatch, two_instruments())
    target = memory_root.replace("memory://", "romemory://")
    with pytest.raises(ConfigError, match=f"cannot write to the archive at {target}: "
                                          "Read-only file system; choose another"):
        convert("fake", ["capture"], target)
    assert reads == []
    assert fsspec.filesystem("memory").find(memory_root)  # untouched


def test_cli_convert_to_a_read_only_target_says_so(read_only_memory, samples, capsys):
    code = main(["convert", "binance", str(samples / "binance/spot_btcusdt_20240808_head.gz"),
                 "--out", "romemory://nowhere", "--quiet"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("makerlab: error: cannot write to the archive at romemory://nowhere")
    assert "Traceback" not in err


def test_cli_convert_to_a_path_below_a_file_is_an_error_not_a_traceback(tmp_path, samples,
                                                                        capsys):
    (tmp_path / "file").write_text("")
    code = main(["convert", "binance", str(samples / "binance/spot_btcusdt_20240808_head.gz"),
                 "--out", str(tmp_path / "file" / "archive"), "--quiet"])
    assert code == 2
    assert "cannot write to the archive at" in capsys.readouterr().err
