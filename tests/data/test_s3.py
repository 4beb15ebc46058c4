"""Archives on S3, end to end against a local S3 server (moto's, started by the ``s3``
fixture): convert, validate, info, the loaders and the Replayer give what they give on a
local disk; credentials come from the environment and are never shown."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import signal
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pandas as pd
import pyarrow.fs as pafs
import pytest

from makerlab.analytics.record import RunRecord
from makerlab.cli import main
from makerlab.data import manifest
from makerlab.data.archive import read_table
from makerlab.data.storage import os_reason, resolve
from makerlab.errors import ConfigError, DataError
from makerlab.sim import Replayer
from makerlab.sweep import sweep
from makerlab.sweep.worker import TIMING_COLUMNS
from makerlab.trading.feed import Feed

BUNDLED_ARCHIVE = Path(__file__).resolve().parents[2] / "data" / "archive"
SAMPLES = sorted((Path(__file__).resolve().parents[1] / "samples" / "binance").glob("*.gz"))
QUOTER = Path(__file__).resolve().parents[1] / "sweep" / "scripts" / "quoter.py"
HOUR = "2024-08-08:23"


def objects(root: str) -> dict[str, bytes]:
    """Every file below ``root`` (local or URL) by relative path."""
    arc = resolve(root)
    return {arc.rel(info.path): arc.read_bytes(info.path) for info in arc.listing(arc.base)
            if info.type == pafs.FileType.File}


def upload(local: Path, url: str) -> None:
    """Mirror a local archive into the bucket, file for file."""
    arc = resolve(url)
    for rel, data in objects(str(local)).items():
        arc.write_bytes(arc.path(rel), data)


def shard_files(files: dict[str, bytes]) -> dict[str, dict]:
    """The manifest's file entries, without the commit ids and times that differ per run."""
    entries = {}
    for rel, data in files.items():
        if rel.startswith("_makerlab/manifest/"):
            for name, entry in json.loads(data)["files"].items():
                entries[f"{rel}/{name}"] = {k: v for k, v in entry.items() if k != "commit"}
    return entries


@pytest.fixture(scope="module")
def converted(s3, tmp_path_factory) -> tuple[Path, str]:
    """The samples converted by the CLI to a local directory and to a bucket."""
    local = tmp_path_factory.mktemp("local") / "archive"
    url = f"{s3.bucket()}/archive"
    for out in (str(local), url):
        assert main(["convert", "binance", *map(str, SAMPLES), "--out", out, "--quiet"]) == 0
    return local, url


def test_convert_writes_the_same_archive_to_s3(converted):
    local, url = converted
    here, there = objects(str(local)), objects(url)
    hours = sorted(rel for rel in here if rel.endswith(".parquet"))
    assert len(hours) == 8
    assert {rel: hashlib.sha256(here[rel]).digest() for rel in hours} == \
        {rel: hashlib.sha256(there[rel]).digest() for rel in there if rel.endswith(".parquet")}
    assert shard_files(there) == shard_files(here) and len(shard_files(here)) == 8
    assert sorted(there) == sorted(here)  # nothing staged, no journal left


def test_validate_and_info_read_s3(converted, capsys):
    local, url = converted
    assert main(["validate", url]) == 0
    assert capsys.readouterr().out.strip() == f"{url}: OK"
    assert main(["info", str(local)]) == 0
    on_disk = capsys.readouterr().out
    assert main(["info", url]) == 0
    assert capsys.readouterr().out == on_disk and "book_snapshot" in on_disk


def test_validate_reports_damage_on_s3(converted, s3):
    local, _ = converted
    url = f"{s3.bucket()}/archive"
    upload(local, url)
    arc = resolve(url)
    [victim] = [info.path for info in arc.listing(arc.base)
                if "kind=trades/exchange=binance/" in info.path
                and info.path.endswith("23.parquet")]
    arc.delete(victim)
    arc.write_bytes(arc.path("kind=trades/notes.txt"), b"x")
    assert main(["validate", url]) == 1
    with pytest.raises(DataError, match="missing: the manifest lists it"):
        read_table(url, "trades", "binance", "BTCUSDT")


# --------------------------------------------------------------------------- reading


@pytest.fixture(scope="module")
def bundled(s3) -> str:
    """The bundled archive (data/archive) mirrored into a bucket."""
    if not (BUNDLED_ARCHIVE / "kind=book_snapshot").is_dir():
        pytest.skip("bundled archive data/archive absent")
    url = f"{s3.bucket()}/archive"
    upload(BUNDLED_ARCHIVE, url)
    return url


def quoting_run(path: str) -> Replayer:
    """Join the best bid and ask of Binance USD-M BTCUSDT every second, for one hour."""
    rep = Replayer.from_archive({"binance": ["BTCUSDT"]}, HOUR, HOUR, path=path,
                                maker_fees=-0.00005,
                                latencies={"req_private": 5, "ack_private": 5})
    oms = rep.get_oms()
    engine = rep.venue.engine("binance", "BTCUSDT")

    async def quote() -> None:
        await oms.cancel_order("binance", "BTCUSDT")
        bid, ask = engine.best(1), engine.best(-1)
        if bid == bid and ask == ask:
            for amount, price in ((Decimal("0.002"), bid), (Decimal("-0.002"), ask)):
                await oms.limit_order("binance", "BTCUSDT", amount, Decimal(repr(price)),
                                      tif="GTX")

    async def go() -> None:
        await oms.add_clock_callback(quote, interval_ms=1000)
        await rep.play(progress=False)

    asyncio.run(go())
    return rep


def test_the_replayer_fills_the_same_from_s3(bundled):
    local, remote = quoting_run(str(BUNDLED_ARCHIVE)), quoting_run(bundled)
    assert len(local.fills) > 10
    assert remote.fills == local.fills
    assert remote.statistics()["binance"]["pnl"] == local.statistics()["binance"]["pnl"]


def test_the_tutorial_loaders_read_s3_as_the_disk(bundled):
    for exc, cls in (("binance", "perp"), ("binance", "spot")):
        kwargs = {"start": HOUR, "end": "2024-08-09:00", "feed_cls": cls}
        here = Feed.load_lob_archives(exc, "BTCUSDT", 20, path=str(BUNDLED_ARCHIVE), **kwargs)
        there = Feed.load_lob_archives(exc, "BTCUSDT", 20, path=bundled, **kwargs)
        assert len(here) > 1000 and len(there) == len(here)
        assert all(a["ts"] == b["ts"] and np.array_equal(a["b"], b["b"])
                   and np.array_equal(a["a"], b["a"]) for a, b in zip(here, there, strict=True))
        trades = Feed.load_trade_archives(exc, "BTCUSDT", path=bundled, **kwargs)
        assert np.array_equal(trades, Feed.load_trade_archives(
            exc, "BTCUSDT", path=str(BUNDLED_ARCHIVE), **kwargs))
    paths = Feed.load_lob_archives("binance", "BTCUSDT", 20, path=bundled, start=HOUR,
                                   end="2024-08-09:00", only_paths=True)
    assert [p.split("/archive/")[1] for p in paths] == [
        "kind=book_snapshot/depth=20/exchange=binance/symbol=BTCUSDT/date=2024-08-08/23.parquet",
        "kind=book_snapshot/depth=20/exchange=binance/symbol=BTCUSDT/date=2024-08-09/00.parquet"]


def test_a_sweep_over_an_s3_archive_gives_the_rows_of_the_disk(bundled, tmp_path, capsys):
    """Each configuration runs in a spawned worker process that reads the bucket (the
    server checks signatures: the environment's credentials reached the workers); the
    script reads the archive from MAKERLAB_ARCHIVE, which --archive sets."""
    grid = {"interval_ms": [1000, 2000]}
    disk = sweep(QUOTER, grid, args=["0"], out=tmp_path / "disk", backend="serial",
                 archive=str(BUNDLED_ARCHIVE), progress=False, report=False).table
    assert main(["sweep", str(QUOTER), "0", "--param", "interval_ms=1000,2000", "--archive",
                 bundled, "--backend", "local", "--workers", "2", "--out",
                 str(tmp_path / "s3"), "--quiet", "--no-report"]) == 0
    assert "2/2 configurations ran" in capsys.readouterr().out
    there = pd.read_parquet(tmp_path / "s3" / "results.parquet")
    same = [c for c in disk.columns if c not in (*TIMING_COLUMNS, "run_dir")]
    assert disk.status.tolist() == ["ok", "ok"] and disk["binance.#trades"].min() > 10
    pd.testing.assert_frame_equal(there[same], disk[same])
    for config in ("0", "1"):
        run = tmp_path / "s3" / "runs" / config
        assert RunRecord.load(run / "record").config["replayer"]["path"] == bundled
        assert json.loads((run / "sweep.json").read_text())["archive"] == bundled


def test_a_sweep_refuses_a_missing_s3_archive_before_running(s3, tmp_path):
    with pytest.raises(ConfigError, match=r"no archive at s3://makerlab-\w+/nothing"):
        sweep(QUOTER, {"interval_ms": [1000]}, args=["0"], out=tmp_path / "out",
              archive=f"{s3.bucket()}/nothing")
    assert not (tmp_path / "out").exists()


def test_reading_hour_files_asks_no_metadata_per_file(bundled, s3):
    """An hour file costs reads of its own bytes only: its size comes from the one listing
    of the dataset, so no HEAD request per file."""
    with s3.requests() as seen:
        table = read_table(bundled, "book_delta", "binance", "BTCUSDT")
    hours = {path for _, path in seen if path.endswith(".parquet")}
    assert table.num_rows and len(hours) == 2
    assert [m for m, p in seen if p in hours and m != "GET"] == []
    assert len([1 for m, p in seen if m == "GET" and p in hours]) <= 2 * len(hours)


# --------------------------------------------------------------------------- credentials


def test_credentials_never_appear_in_output_logs_or_errors(converted, s3, caplog, capsys,
                                                          monkeypatch):
    """The environment's keys, and keys written into a URL by mistake, are redacted from
    every message, path and repr; the server checks signatures, so a wrong secret is
    refused and a key in the URL is the one used."""
    _, url = converted
    key_id, secret = s3.key_id, s3.secret
    caplog.set_level(logging.DEBUG)
    shown = [repr(resolve(url)), str(resolve(url))]
    assert main(["-v", "info", url]) == 0 and main(["-v", "validate", url]) == 0
    shown.append(os_reason(OSError(f"denied for {key_id} with {secret}")))
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    with pytest.raises(DataError, match=r"cannot list .*SIGNATURE_DOES_NOT_MATCH") as refused:
        read_table(url, "trades", "binance", "BTCUSDT")
    bucket = url.removeprefix("s3://").split("/")[0]
    keyed = f"s3://{key_id}:{quote(secret, safe='')}@{bucket}/archive"
    assert read_table(keyed, "trades", "binance", "BTCUSDT").num_rows == 569
    # a / left unencoded (letters before each copy: a secret starting with / made pyarrow
    # read another URL, about 1 run in 64)
    raw = f"s3://{key_id}:a{secret}/b{secret}@{bucket}/archive"
    assert main(["info", raw]) == 2
    arc = resolve(keyed)
    replayer = Replayer.from_archive({"binance": ["BTCUSDT"]}, HOUR, HOUR, path=keyed)
    shown += [repr(arc), arc.show(arc.path("x")), str(refused.value), repr(replayer.config)]
    missing = keyed.replace(bucket, "nope-x")
    assert main(["validate", keyed.replace("/archive", "/nothing")]) == 2
    assert main(["convert", "binance", str(SAMPLES[0]), "--out", missing, "--quiet"]) == 2
    out = capsys.readouterr()
    text = "\n".join([*shown, out.out, out.err, *(r.getMessage() for r in caplog.records)])
    assert "no archive at s3://***@" in text and "cannot write to the archive at s3://***@" \
        in text and "NO_SUCH_BUCKET" in text
    assert "cannot open the archive at s3://***@" in text
    assert "allow_delayed_open" not in text  # makerlab's own option: not the user's URL
    assert not [word for word in (secret, quote(secret, safe=""), key_id) if word in text]


# --------------------------------------------------------------------------- interrupted commits

# Run the CLI; SIGKILL this very process right before occurrence N (0-based) of the storage
# operation OP on a path containing PART (as tests/data/test_archive_kill.py does on disk).
CHILD = r"""
import os, signal, sys
from makerlab.data.storage import Root

op, part, occurrence = sys.argv[1], sys.argv[2], int(sys.argv[3])
seen = [0]
real = getattr(Root, op)

def call(self, *args):
    if part in args[0]:
        if seen[0] == occurrence:
            os.kill(os.getpid(), signal.SIGKILL)
        seen[0] += 1
    return real(self, *args)

setattr(Root, op, call)
from makerlab.analytics.record import RunRecord
from makerlab.cli import main
sys.exit(main(sys.argv[4:]))
"""


def killed_convert(url: str, op: str, part: str, occurrence: int) -> None:
    argv = ["convert", "binance", *map(str, SAMPLES), "--out", url, "--quiet"]
    child = subprocess.run([sys.executable, "-c", CHILD, op, part, str(occurrence), *argv],
                           capture_output=True, timeout=120)
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()


def hour_digests(root: str) -> dict[str, str]:
    return {rel: hashlib.sha256(data).hexdigest() for rel, data in objects(root).items()
            if rel.endswith(".parquet")}


@pytest.mark.parametrize(("op", "part", "occurrence", "repair"), [
    # a server-side copy landed, its staged object was not deleted yet: both exist
    ("delete", ".parquet.tmp-", 2, ["validate", "--fix", "URL"]),
    # every hour file in place, 3 of 8 shards written
    ("write_bytes", "/_makerlab/manifest/", 3,
     ["convert", "binance", *map(str, SAMPLES), "--out", "URL", "--quiet"]),
])
def test_an_interrupted_commit_on_s3_is_reported_refused_and_completed(
        converted, s3, op, part, occurrence, repair, capsys):
    local, _ = converted
    url = f"{s3.bucket()}/archive"
    killed_convert(url, op, part, occurrence)
    [journal] = manifest.read_pending(resolve(url))[0]
    assert main(["validate", url]) == 1
    problems = [line for line in capsys.readouterr().out.splitlines() if "ERROR" in line]
    assert len(problems) == 9 and all(journal.commit.id in line for line in problems)
    if op == "delete":  # the third file's copy landed: it is in place, not "previous"
        assert sum("in place, not yet recorded" in line for line in problems) == 2
        assert sum("copied into place, its staged copy not yet deleted" in line
                   for line in problems) == 1
    with pytest.raises(DataError, match="unfinished write"):
        read_table(url, "book_delta", "binance", "BTCUSDT")
    assert main([url if arg == "URL" else arg for arg in repair]) == 0
    assert main(["validate", url]) == 0
    assert not [rel for rel in objects(url) if ".tmp-" in rel or "/pending/" in rel]
    assert hour_digests(url) == hour_digests(str(local))
    assert shard_files(objects(url)) == shard_files(objects(str(local)))
