"""A configuration gives the same result on every backend: serial, process pool, Ray.

The quoter draws its order sizes from the Replayer's seeded ``rng`` and the sweep varies
the seed, so equal statistics also mean the seed reached each worker's Replayer.
"""

import gc

import pandas as pd
import pytest
from sweep_scripts import QUOTER, needs_archive

from makerlab.sweep import sweep
from makerlab.sweep.backends import PoolBackend, SerialBackend, failed_row
from makerlab.sweep.worker import TIMING_COLUMNS, Task

pytestmark = needs_archive
SPACE = {"seed": [0, 1], "interval_ms": [700, 1500]}
VOLATILE = [*TIMING_COLUMNS, "traceback"]


def results(tmp_path, backend: str) -> pd.DataFrame:
    result = sweep(QUOTER, SPACE, args=["0"], out=tmp_path / backend, backend=backend,
                   workers=2, progress=False, report=False)
    assert (result.table.status == "ok").all(), result.table.error.tolist()
    return result.table.drop(columns=VOLATILE)


@pytest.fixture(scope="module")
def serial(tmp_path_factory) -> pd.DataFrame:
    table = results(tmp_path_factory.mktemp("sweep"), "serial")
    assert table["binance.volume"].nunique() == len(table)  # every configuration differs
    return table


def test_the_process_pool_gives_the_serial_results(serial, tmp_path):
    pd.testing.assert_frame_equal(results(tmp_path, "local"), serial)


def test_ray_gives_the_serial_results(serial, tmp_path):
    pytest.importorskip("ray")
    pd.testing.assert_frame_equal(results(tmp_path, "ray"), serial)


def test_a_dead_worker_fails_its_configuration_and_the_pool_is_replaced(tmp_path):
    script = tmp_path / "dies.py"
    script.write_text("import os\nfrom makerlab import params\nif params(exit=0)['exit']:\n"
                      "    os._exit(9)\n")
    tasks = [Task(str(i), str(script), (), {"exit": e}, str(tmp_path))
             for i, e in enumerate([0, 1, 0])]
    rows = {}
    queue = iter(tasks)
    PoolBackend(1).run(lambda: next(queue, None), lambda task, row: rows.update({task.id: row}))
    assert "worker process died" in rows["1"]["error"]
    # the others ran to their end (a script that plays no Replayer is an error of its own)
    assert "played 0" in rows["0"]["error"] and "played 0" in rows["2"]["error"]
    assert failed_row(tasks[1], "x")["config"] == "1"


def test_the_serial_backend_freezes_what_a_configuration_leaves_and_unfreezes_at_its_end(
        tmp_path):
    script = tmp_path / "leaves.py"
    script.write_text("import json\nCACHE = [{'kept': i} for i in range(100)]\n")
    tasks = iter([Task(str(i), str(script), (), {}, str(tmp_path)) for i in range(2)])
    frozen = []
    SerialBackend().run(lambda: next(tasks, None),
                        lambda task, row: frozen.append(gc.get_freeze_count()))
    assert frozen[0] > 0 and frozen[1] >= frozen[0]  # survivors of each run are frozen
    assert gc.get_freeze_count() == 0  # ... and this process's heap is its own again


def test_the_serial_backend_leaves_a_heap_the_caller_froze_as_it_is(tmp_path):
    script = tmp_path / "plain.py"
    script.write_text("x = 1\n")
    gc.freeze()
    try:
        before = gc.get_freeze_count()
        tasks = iter([Task("0", str(script), (), {}, str(tmp_path))])
        SerialBackend().run(lambda: next(tasks, None), lambda task, row: None)
        assert gc.get_freeze_count() == before
    finally:
        gc.unfreeze()


def test_a_pool_worker_starts_with_the_fork_servers_heap_frozen(tmp_path):
    script = tmp_path / "count.py"
    script.write_text("import gc, pathlib\npathlib.Path('frozen').write_text("
                      "str(gc.get_freeze_count()))\n")
    tasks = iter([Task("0", str(script), (), {}, str(tmp_path))])
    PoolBackend(1).run(lambda: next(tasks, None), lambda task, row: None)
    assert int((tmp_path / "runs" / "0" / "frozen").read_text()) > 0


def test_pool_workers_see_the_sweeps_environment_not_the_fork_servers(tmp_path, monkeypatch):
    """The fork server outlives a sweep: credentials set between two sweeps must reach the
    second one's workers (an S3 sweep after a local one read no endpoint and failed)."""
    script = tmp_path / "probe.py"
    script.write_text("import os\n"
                      "raise RuntimeError('probe=' + os.environ.get('MAKERLAB_PROBE', 'unset'))\n")

    def error_of_one_run() -> str:
        rows: dict[str, dict] = {}
        queue = iter([Task("0", str(script), (), {}, str(tmp_path))])
        PoolBackend(1).run(lambda: next(queue, None),
                           lambda task, row: rows.update({task.id: row}))
        return rows["0"]["error"]

    monkeypatch.delenv("MAKERLAB_PROBE", raising=False)
    assert "probe=unset" in error_of_one_run()  # the fork server runs from here on
    monkeypatch.setenv("MAKERLAB_PROBE", "set later")
    assert "probe=set later" in error_of_one_run()
