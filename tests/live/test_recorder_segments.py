"""The recorder's write-ahead segments (makerlab.data.segments): what a kill leaves is read
up to the last whole flush, recovered once, never while its recorder runs, recognised by
validate and repaired by ``validate --fix``."""

from __future__ import annotations

import os
import shutil
import uuid

import pyarrow as pa
import pytest

from makerlab.cli import main as cli
from makerlab.data import segments
from makerlab.data.archive import HOUR_NS, read_table, write_table
from makerlab.data.layout import dataset_dir
from makerlab.data.manifest import HEALTH_DIR, SEGMENTS_DIR
from makerlab.data.schema import TRADES, TRADES_SCHEMA
from makerlab.data.segments import SegmentLog, recover_segments, segment_sessions
from makerlab.data.validate import validate_archive

HOUR = 480_000  # an epoch hour in 2024
DATASET = dataset_dir(TRADES, "binance", "BTCUSDT")


def _trades(first: int, n: int, hour: int = HOUR) -> pa.Table:
    """``n`` trades with ids first.. in ``hour``, one ms apart."""
    ts = [hour * HOUR_NS + (first + i) * 1_000_000 for i in range(n)]
    return pa.Table.from_pydict({
        "exchange_ts": ts, "local_ts": ts, "price": [100.0 + i for i in range(n)],
        "size": [1.0] * n, "side": [1] * n, "trade_id": [str(first + i) for i in range(n)],
    }, schema=TRADES_SCHEMA)


def _ids(root) -> list[int]:
    return [int(x) for x in read_table(root, TRADES, "binance", "BTCUSDT")
            .column("trade_id").to_pylist()]


def _segment_files(root) -> list[str]:
    return sorted(str(p) for p in (root / SEGMENTS_DIR).rglob("*.arrows"))


def test_a_tail_cut_short_is_read_up_to_its_last_whole_batch(tmp_path):
    log = SegmentLog(tmp_path)
    for first in (0, 10, 20):
        log.append([(DATASET, _trades(first, 10))])
    log.abandon()
    (path,) = _segment_files(tmp_path)
    os.truncate(path, os.path.getsize(path) - 40)  # killed while writing the third batch
    assert recover_segments(tmp_path)
    assert _ids(tmp_path) == list(range(20))
    assert validate_archive(tmp_path).ok and not _segment_files(tmp_path)


def test_a_flush_counts_only_once_every_file_has_it(tmp_path, monkeypatch):
    """Killed after writing one kind's batch but before the flush was marked: the other
    kind never got it, and neither is recovered."""
    log = SegmentLog(tmp_path)
    other = dataset_dir(TRADES, "binance", "ETHUSDT")
    log.append([(DATASET, _trades(0, 5)), (other, _trades(0, 5))])
    monkeypatch.setattr(segments, "_put_flushed", _fail)
    with pytest.raises(KeyboardInterrupt):
        log.append([(DATASET, _trades(5, 5)), (other, _trades(5, 5))])
    log.abandon()
    monkeypatch.undo()
    recover_segments(tmp_path)
    assert _ids(tmp_path) == list(range(5))
    eth = read_table(tmp_path, TRADES, "binance", "ETHUSDT").column("trade_id").to_pylist()
    assert eth == [str(i) for i in range(5)]


def _fail(*_args) -> None:
    raise KeyboardInterrupt  # stands for the kill


def test_a_running_session_is_left_alone_and_validate_notes_it(tmp_path):
    log = SegmentLog(tmp_path)
    log.append([(DATASET, _trades(0, 3))])
    assert recover_segments(tmp_path) == []
    (info,) = segment_sessions(tmp_path)
    assert info.alive and info.files == 1 and info.session == log.session
    report = validate_archive(tmp_path)
    assert report.ok and any("is running" in note for note in report.notes)
    assert _segment_files(tmp_path)
    log.abandon()  # as the kernel does when the recorder dies
    report = validate_archive(tmp_path)
    assert not report.ok and "uncommitted rows of recorder session" in report.problems[0]
    assert cli(["validate", "--fix", str(tmp_path)]) == 0
    assert _ids(tmp_path) == [0, 1, 2] and segment_sessions(tmp_path) == []


def test_recovering_twice_changes_nothing(tmp_path):
    """Killed after the commit but before the segments were deleted: the next recovery
    commits the same rows again, which the archive writer's merge drops."""
    root = tmp_path / "archive"
    log = SegmentLog(root)
    log.append([(DATASET, _trades(0, 4))])
    log.append([(DATASET, _trades(4, 4, hour=HOUR + 1))])
    log.abandon()
    kept = tmp_path / "kept"
    shutil.copytree(root / SEGMENTS_DIR, kept)
    recover_segments(root)
    files = sorted((root / "kind=trades").rglob("*.parquet"))
    before = [f.read_bytes() for f in files]
    shutil.copytree(kept, root / SEGMENTS_DIR, dirs_exist_ok=True)
    (line,) = recover_segments(root)
    assert "8 rows into 2 hour files" in line
    assert [f.read_bytes() for f in files] == before
    assert _ids(root) == list(range(8)) and validate_archive(root).ok


def test_sessions_merge_into_the_same_hour_and_sealed_hours_continue(tmp_path):
    first = SegmentLog(tmp_path)
    first.append([(DATASET, _trades(0, 3))])
    first.abandon()
    second = SegmentLog(tmp_path)
    second.append([(DATASET, _trades(3, 3))])
    sealed = second.seal([HOUR])
    second.append([(DATASET, _trades(6, 3))])  # late rows of the sealed hour
    assert second.open_hours() == {HOUR} and len(_segment_files(tmp_path)) == 3
    done = segments.commit_segments(tmp_path, sealed, upto=second.flushes)
    assert done.rows == 3 and _ids(tmp_path) == [3, 4, 5]
    recover_segments(tmp_path)  # the first session only: the second is running
    assert _ids(tmp_path) == [0, 1, 2, 3, 4, 5]
    segments.commit_segments(tmp_path, second.seal(), upto=second.flushes)
    second.close()
    assert _ids(tmp_path) == list(range(9)) and not _segment_files(tmp_path)
    assert validate_archive(tmp_path).ok


def test_validate_knows_every_recorder_path_and_still_reports_strays(tmp_path):
    log = SegmentLog(tmp_path)
    log.append([(DATASET, _trades(0, 2))])
    segments.commit_segments(tmp_path, log.seal(), upto=log.flushes)
    health = tmp_path / HEALTH_DIR / "binance" / "2024-10-04.jsonl"
    health.parent.mkdir(parents=True)
    health.write_text('{"kind": "connected"}\n{"kind": "ga')
    assert validate_archive(tmp_path).ok  # a running session, a health log
    log.close()
    (tmp_path / HEALTH_DIR / "notes.txt").write_text("x")
    (tmp_path / SEGMENTS_DIR / "stray.txt").write_text("x")
    problems = validate_archive(tmp_path).problems
    assert len(problems) == 2 and all("unexpected file" in p for p in problems)


def test_a_remote_archive_keeps_its_segments_in_a_local_spool(tmp_path, monkeypatch):
    """Off a local disk the segments live in the spool (default: the user's cache, one
    folder per archive); recovery commits only the sessions of the archive it is given."""
    memory_root = f"memory://archive-{uuid.uuid4().hex}"
    write_table(memory_root, TRADES, "binance", "BTCUSDT", _trades(50, 1, hour=HOUR + 1))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    spool = segments.spool_dir(memory_root)
    assert spool.startswith(str(tmp_path / "cache" / "makerlab" / "spool"))
    assert segments.spool_dir(memory_root, tmp_path / "mine") == str(tmp_path / "mine")
    log = SegmentLog(memory_root)
    log.append([(DATASET, _trades(0, 3))])
    log.abandon()
    assert log.spool == spool and log.path.startswith(spool)
    other = SegmentLog(f"{memory_root}-other", spool=spool)  # another archive, same spool
    other.append([(DATASET, _trades(10, 2))])
    other.abandon()
    (info,) = segment_sessions(memory_root)
    assert info.session == log.session and not info.alive
    assert not validate_archive(memory_root).ok
    assert cli(["validate", "--fix", memory_root]) == 0
    assert _ids(memory_root) == [0, 1, 2, 50] and segment_sessions(memory_root) == []
    assert [s.session for s in segment_sessions(f"{memory_root}-other", spool=spool)] == \
        [other.session]
