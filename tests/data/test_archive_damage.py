"""Damaged archives: every kind of damage is reported by validate (one line naming the
path), refused by the loaders, or skipped by them with a warning; never crashed on."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from test_archive import MIDNIGHT, delta_table, snapshot_table, trades_table

from makerlab.cli import main
from makerlab.data import arrays, manifest
from makerlab.data.archive import (
    ArchiveWriter,
    archive_paths,
    list_archive,
    read_table,
    write_table,
)
from makerlab.data.storage import Root, resolve
from makerlab.data.validate import validate_archive
from makerlab.errors import DataError
from makerlab.sim import Replayer
from makerlab.trading.feed import Feed

TRADES = "kind=trades/exchange=binance/symbol=BTCUSDT"
SNAPSHOTS = "kind=book_snapshot/depth=5/exchange=binance/symbol=BTCUSDT"
DELTAS = "kind=book_delta/exchange=binance/symbol=BTCUSDT"
H23 = "date=2024-08-08/23.parquet"
H00 = "date=2024-08-09/00.parquet"
SEC = 1_000_000_000


def newer() -> object:
    """A second capture overlapping both hours of ``trades_table()`` with other rows."""
    return trades_table(60, first=MIDNIGHT - 3 * SEC)


@pytest.fixture
def merged(tmp_path_factory):
    """The trades of ``root`` after ``newer()`` was written without any interruption."""
    clean = tmp_path_factory.mktemp("clean")
    write_table(clean, "trades", "binance", "BTCUSDT", trades_table())
    write_table(clean, "trades", "binance", "BTCUSDT", newer())
    return read_table(clean, "trades", "binance", "BTCUSDT")


@pytest.fixture
def root(tmp_path) -> Path:
    """An archive of one instrument, three kinds, hours 23 and 00, written in one commit."""
    with ArchiveWriter(tmp_path, converter="test") as writer:
        writer.write("trades", "binance", "BTCUSDT", trades_table())
        writer.write("book_snapshot", "binance", "BTCUSDT", snapshot_table(5))
        writer.write("book_delta", "binance", "BTCUSDT", delta_table())
    return tmp_path


def problems(root) -> list[str]:
    return list(validate_archive(root).problems)


def only(lines: list[str], path: str) -> str:
    """The one line about a path containing ``path`` (lines read ``PATH: message``)."""
    hits = [line for line in lines if path in line.split(": ", 1)[0]]
    assert len(hits) == 1, lines
    return hits[0]


# --------------------------------------------------------------------------- sound archives


def test_a_sound_archive_validates_without_problems_or_notes(root):
    report = validate_archive(root)
    assert report.ok and report.problems == () and report.notes == ()


def test_manifest_records_rows_bytes_sha256_and_exchange_ts_range(root):
    path = root / f"_makerlab/manifest/{TRADES}/date=2024-08-09.json"
    shard = json.loads(path.read_text())
    entry = shard["files"]["00.parquet"]
    data = (root / TRADES / H00).read_bytes()
    table = pq.read_table(root / TRADES / H00)
    ets = table.column("exchange_ts").to_numpy()
    assert entry["rows"] == 20 and entry["bytes"] == len(data)
    assert entry["sha256"] == manifest.sha256(data)
    assert (entry["first_exchange_ts"], entry["last_exchange_ts"]) == (ets.min(), ets.max())
    commit = shard["commits"][entry["commit"]]
    assert commit["converter"] == "test" and commit["makerlab"] and commit["written"]
    assert f"{SNAPSHOTS}/date=2024-08-09" in commit["shards"]  # the whole commit, all kinds
    assert shard["format"] == manifest.FORMAT


# --------------------------------------------------------------------------- missing, duplicated


def test_validate_reports_an_hour_file_copied_onto_another_hours_name(root):
    shutil.copy(root / TRADES / H23, root / TRADES / H00)
    line = only(problems(root), f"{TRADES}/{H00}")
    assert "duplicate: the same bytes as" in line and f"{TRADES}/{H23}" in line
    assert "20 rows committed under this name are gone" in line


def test_loaders_refuse_an_hour_file_copied_onto_another_hours_name(root):
    shutil.copy(root / TRADES / H23, root / TRADES / H00)
    with pytest.raises(DataError, match=r"00\.parquet"):
        read_table(root, "trades", "binance", "BTCUSDT")
    with pytest.raises(DataError, match=r"00\.parquet"):
        arrays.load_trade_arrays(root, "binance", "BTCUSDT")


def test_loaders_refuse_a_file_whose_rows_fall_outside_its_hour_without_a_manifest(root):
    shutil.rmtree(root / "_makerlab")
    shutil.copy(root / TRADES / H23, root / TRADES / H00)
    with pytest.raises(DataError, match=r"00\.parquet: 20 of 20 rows have exchange_ts in "
                                        r"2024-08-08 23:00, not in this file's hour"):
        read_table(root, "trades", "binance", "BTCUSDT")


def test_validate_reports_a_copy_to_a_new_hour_without_a_manifest(root):
    shutil.rmtree(root / "_makerlab")
    (root / TRADES / "date=2024-08-09/05.parquet").write_bytes((root / TRADES / H00).read_bytes())
    line = only(problems(root), "05.parquet")
    assert "duplicate: the same bytes as" in line and H00 in line


def test_validate_reports_a_deleted_hour_file_as_missing(root):
    (root / TRADES / H00).unlink()
    line = only(problems(root), f"{TRADES}/{H00}")
    assert "missing: the manifest lists it (20 rows" in line


def test_loaders_refuse_a_range_with_a_deleted_hour_file(root):
    (root / TRADES / H00).unlink()
    assert read_table(root, "trades", "binance", "BTCUSDT", end="2024-08-08:23").num_rows == 20
    with pytest.raises(DataError, match=r"00\.parquet: missing: the manifest lists it"):
        read_table(root, "trades", "binance", "BTCUSDT")
    with pytest.raises(DataError, match="missing"):
        archive_paths(root, "trades", "binance", "BTCUSDT", "2024-08-09:00", "2024-08-09:00")


def test_validate_reports_a_moved_hour_file_at_both_ends(root):
    (root / TRADES / H00).rename(root / TRADES / "date=2024-08-09/03.parquet")
    lines = problems(root)
    assert "moved: the same bytes as the missing" in only(lines, "03.parquet")
    assert "the same bytes are at" in only(lines, f"{TRADES}/{H00}")


def test_validate_reports_a_file_moved_to_another_instrument(root):
    other = root / "kind=trades/exchange=binance/symbol=ETHUSDT/date=2024-08-09"
    other.mkdir(parents=True)
    shutil.copy(root / TRADES / H00, other / "00.parquet")
    shutil.rmtree(root / "_makerlab")  # even without a manifest: the metadata names BTCUSDT
    line = only(problems(root), "symbol=ETHUSDT/date=2024-08-09/00.parquet")
    assert "duplicate: the same bytes as" in line
    (root / TRADES / H00).unlink()
    line = only(problems(root), "symbol=ETHUSDT/date=2024-08-09/00.parquet")
    assert "its metadata says symbol='BTCUSDT'" in line


def test_validate_reports_an_extra_file_not_in_the_manifest(root):
    table = trades_table(3, MIDNIGHT + 3_600_000_000_000)  # sound rows of hour 01
    pq.write_table(table, root / TRADES / "date=2024-08-09/01.parquet")
    line = only(problems(root), "01.parquet")
    assert "extra: not in the manifest" in line
    with pytest.raises(DataError, match=r"01\.parquet: not in the archive manifest"):
        read_table(root, "trades", "binance", "BTCUSDT")


def test_an_unreadable_manifest_shard_is_reported_once_and_refused_by_the_loaders(root):
    """A day's shard cut short: one line naming it; that day's files are not called extra
    (the manifest cannot speak for them), the other day's are judged as usual."""
    shard = root / f"_makerlab/manifest/{TRADES}/date=2024-08-08.json"
    shard.write_bytes(shard.read_bytes()[:40])
    lines = problems(root)
    assert "unreadable manifest file" in only(lines, "date=2024-08-08.json")
    assert len(lines) == 1, lines
    with pytest.raises(DataError, match="unreadable manifest file"):
        read_table(root, "trades", "binance", "BTCUSDT")


def test_validate_reports_a_file_changed_after_it_was_committed(root):
    path = root / TRADES / H00
    pq.write_table(pq.read_table(path).slice(0, 5), path)
    line = only(problems(root), f"{TRADES}/{H00}")
    assert "changed after it was committed: 5 rows" in line and "recorded 20 rows" in line
    with pytest.raises(DataError, match="the file changed after it was committed"):
        read_table(root, "trades", "binance", "BTCUSDT")


# --------------------------------------------------------------------------- stray paths


def test_a_stray_date_directory_is_reported_and_every_loader_skips_it(root, caplog):
    bad = root / TRADES / "date=2024-13-45"
    bad.mkdir()
    shutil.copy(root / TRADES / H00, bad / "00.parquet")
    shutil.copytree(root / SNAPSHOTS / "date=2024-08-09", root / SNAPSHOTS / "date=2024-13-45")
    lines = problems(root)
    assert "not a calendar date" in only(lines, f"{TRADES}/date=2024-13-45")
    assert len(lines) == 2  # one line per bad directory, not per file inside it
    with caplog.at_level("WARNING", logger="makerlab.data.archive"):
        assert read_table(root, "trades", "binance", "BTCUSDT").num_rows == 40
    assert "date=2024-13-45: ignored, not a calendar date" in caplog.text
    assert len(archive_paths(root, "trades", "binance", "BTCUSDT")) == 2
    assert list_archive(root).rows.sum() == 40 + 6 + 5
    assert len(arrays.load_trade_arrays(root, "binance", "BTCUSDT")) == 40
    assert len(arrays.load_snapshot_arrays(root, "binance", "BTCUSDT", 5)) == 6
    assert len(Feed.load_trade_archives("binance", "BTCUSDT", path=root,
                                        start="2024-08-08:23", end="2024-08-09:00")) == 40
    assert len(Feed.load_lob_archives("binance", "BTCUSDT", 5, path=root,
                                      start="2024-08-08:23", end="2024-08-09:00")) == 6
    replayer = Replayer.from_archive({"binance": ["BTCUSDT"]}, "2024-08-08:23",
                                     "2024-08-09:00", path=root, depth=5)
    assert len(replayer.market_tapes()[0][0].exchange_ts) == 6  # streamed: the range's


def test_a_stray_hour_name_does_not_stop_validate_reporting_a_corrupt_file(root):
    shutil.copy(root / TRADES / H00, root / TRADES / "date=2024-08-09/25.parquet")
    (root / SNAPSHOTS / H23).write_bytes(b"not parquet at all")
    lines = problems(root)
    assert "not an hour file" in only(lines, "25.parquet")
    assert "unreadable Parquet file" in only(lines, f"{SNAPSHOTS}/{H23}")


def test_unknown_directories_and_files_are_reported_as_stray(root):
    (root / "kind=quotes/x").mkdir(parents=True)
    (root / "notes.txt").write_text("hi")
    (root / TRADES / "date=2024-08-09/extra").mkdir()
    (root / "kind=trades/exchange=binance/oops").mkdir()
    (root / "_makerlab/stray.json").write_text("{}")
    lines = problems(root)
    assert "unknown kind" in only(lines, "kind=quotes")
    assert "unexpected file" in only(lines, "notes.txt")
    assert "unexpected directory inside a date directory" in only(lines, "extra")
    assert "expected symbol=" in only(lines, "oops")
    assert "unexpected file in the manifest directory" in only(lines, "stray.json")
    assert len(lines) == 5


# --------------------------------------------------------------------------- half-written


def test_validate_reports_an_instrument_whose_kinds_disagree_with_the_manifest(root):
    shutil.rmtree(root / SNAPSHOTS)
    shutil.rmtree(root / "_makerlab/manifest" / SNAPSHOTS)
    lines = problems(root)
    assert len(lines) == 2  # both days of the snapshots
    assert "half-written: commit" in only(lines, f"{SNAPSHOTS}/date=2024-08-09")


def kill_after(monkeypatch, moves: int) -> None:
    """Make the process 'die' (an exception no code handles) before move number
    ``moves + 1`` of the next commit: the state a kill -9 leaves, minus the process."""
    real = Root.move
    count = iter(range(10**6))

    class Killed(BaseException):
        pass

    def move(self, source, target):
        if next(count) >= moves:
            raise Killed
        return real(self, source, target)

    monkeypatch.setattr(Root, "move", move)
    return Killed


def test_an_unfinished_commit_is_reported_file_by_file(root, monkeypatch):
    killed = kill_after(monkeypatch, 1)
    with pytest.raises(killed):
        write_table(root, "trades", "binance", "BTCUSDT", newer())
    monkeypatch.undo()
    lines = problems(root)
    assert len(lines) == 3
    assert "in place, not yet recorded" in only(lines, f"{TRADES}/{H23}")
    assert "staged, not yet moved into place (the file there is the previous version)" in \
        only(lines, f"{TRADES}/{H00}")
    assert "1 of 2 files in place" in only(lines, "_makerlab/pending/")


def test_loaders_refuse_ranges_an_unfinished_commit_touches(root, monkeypatch):
    killed = kill_after(monkeypatch, 1)
    with pytest.raises(killed):
        write_table(root, "trades", "binance", "BTCUSDT", newer())
    monkeypatch.undo()
    with pytest.raises(DataError, match=r"unfinished write .* touches this file"):
        read_table(root, "trades", "binance", "BTCUSDT")
    assert read_table(root, "book_delta", "binance", "BTCUSDT").num_rows == 5  # untouched


def test_the_next_write_completes_an_interrupted_commit(root, monkeypatch, merged):
    killed = kill_after(monkeypatch, 1)
    with pytest.raises(killed):
        write_table(root, "trades", "binance", "BTCUSDT", newer())
    monkeypatch.undo()
    write_table(root, "trades", "binance", "BTCUSDT", newer())
    assert validate_archive(root).ok
    assert read_table(root, "trades", "binance", "BTCUSDT").equals(merged)
    assert not list(root.rglob("*.tmp-*")) and not list((root / "_makerlab/pending").iterdir())


def test_validate_fix_completes_an_interrupted_commit(root, monkeypatch, capsys, merged):
    killed = kill_after(monkeypatch, 3)  # both hour files moved, killed in the shards
    with pytest.raises(killed):
        write_table(root, "trades", "binance", "BTCUSDT", newer())
    monkeypatch.undo()
    assert main(["validate", str(root)]) == 1
    assert main(["validate", "--fix", str(root)]) == 0
    out = capsys.readouterr().out
    assert "FIXED completed the interrupted write" in out and out.endswith(": OK\n")
    assert read_table(root, "trades", "binance", "BTCUSDT").equals(merged)


def test_a_journal_cut_short_means_nothing_was_moved(root):
    before = read_table(root, "trades", "binance", "BTCUSDT")
    writer = ArchiveWriter(root)
    writer.write("trades", "binance", "BTCUSDT", newer())
    journal = root / manifest.journal_rel(writer._manifest.id)
    journal.parent.mkdir(parents=True, exist_ok=True)
    journal.write_text('{"format": 1, "commit": {"id": ')  # killed while writing it
    lines = problems(root)
    assert "never committed (its journal is incomplete)" in only(lines, "_makerlab/pending/")
    assert sum("leftover of write" in line for line in lines) == 2
    assert read_table(root, "trades", "binance", "BTCUSDT").equals(before)
    write_table(root, "trades", "binance", "BTCUSDT", trades_table(10))  # the next write
    assert validate_archive(root).ok and not list(root.rglob("*.tmp-*"))


# --------------------------------------------------------------------------- leftovers


def test_leftover_staged_files_are_reported_and_the_next_write_deletes_them(root):
    leftover = root / TRADES / "date=2024-08-09/.00.parquet.tmp-0123abcd"
    leftover.write_bytes(b"half a parquet file")
    assert "leftover of write 0123abcd" in only(problems(root), ".00.parquet.tmp-0123abcd")
    write_table(root, "trades", "binance", "BTCUSDT", trades_table(3))
    assert not leftover.exists() and validate_archive(root).ok


def test_validate_fix_deletes_leftovers_anywhere(root, capsys):
    leftover = root / SNAPSHOTS / "date=2024-08-09/.00.parquet.tmp-0123abcd"
    leftover.write_bytes(b"")
    probe = root / "_makerlab/.probe.tmp-feed"
    probe.write_bytes(b"")
    assert main(["validate", "--fix", str(root)]) == 0
    out = capsys.readouterr().out
    assert out.count("FIXED") == 2 and not leftover.exists() and not probe.exists()


# --------------------------------------------------------------------------- no manifest


def test_an_archive_without_manifest_validates_file_by_file_with_a_note(root):
    shutil.rmtree(root / "_makerlab")
    report = validate_archive(root)
    assert report.ok
    [note] = report.notes
    assert "no manifest" in note and "checked one by one" in note
    (root / SNAPSHOTS / H23).write_bytes(b"broken")
    assert "unreadable Parquet file" in only(problems(root), f"{SNAPSHOTS}/{H23}")


def test_the_first_write_into_an_archive_without_manifest_adopts_its_files(root):
    shutil.rmtree(root / "_makerlab")
    write_table(root, "trades", "binance", "BTCUSDT", newer())
    report = validate_archive(root)
    assert report.ok
    assert [n for n in report.notes if "no manifest for this dataset" in n] == [
        f"{root}/{DELTAS}: no manifest for this dataset (written by an older makerlab or "
        "another tool): checked file by file",
        f"{root}/{SNAPSHOTS}: no manifest for this dataset (written by an older makerlab or "
        "another tool): checked file by file"]
    shard = json.loads((root / f"_makerlab/manifest/{TRADES}/date=2024-08-08.json").read_text())
    assert {c["converter"] for c in shard["commits"].values()} == {"adopted", "write_table"}


# --------------------------------------------------------------------------- object storage


def test_validate_and_fix_work_on_memory_urls(memory_root):
    write_table(memory_root, "trades", "binance", "BTCUSDT", trades_table())
    arc = resolve(memory_root)
    arc.write_bytes(arc.path(f"{TRADES}/date=2024-08-09/.00.parquet.tmp-abc"), b"x")
    arc.delete(arc.path(f"{TRADES}/{H23}"))
    report = validate_archive(memory_root)
    assert len(report.problems) == 2
    assert all(line.startswith(f"{memory_root}/{TRADES}/") for line in report.problems)
    assert len(validate_archive(memory_root, fix=True).fixed) == 1


def test_cli_prints_one_line_per_problem_naming_the_path(root, capsys):
    (root / TRADES / H00).unlink()
    (root / TRADES / "date=2024-13-45").mkdir()
    assert main(["validate", str(root)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == f"{root}: 2 problem(s)"
    assert all(line.startswith(f"ERROR {root}/{TRADES}/") for line in out[:-1])


def test_info_skips_stray_paths(root, capsys):
    (root / TRADES / "date=2024-13-45").mkdir()
    assert main(["info", str(root)]) == 0
    assert "2024-13-45" not in capsys.readouterr().out
