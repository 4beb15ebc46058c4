"""A configuration gives the same result on every backend: serial, process pool, Ray.

The quoter draws its order sizes from the Replayer's seeded ``rng`` and the sweep varies
the seed, so equal statistics also mean the seed reached each worker's Replayer.
"""

import pandas as pd
import pytest
from sweep_scripts import QUOTER, needs_archive

from makerlab.sweep import sweep
from makerlab.sweep.backends import PoolBackend, failed_row
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
