"""A driver script that starts a pool sweep at import is refused before anything runs.

Each pool worker imports the main script first (multiprocessing's forkserver and spawn
rule), so an unguarded call would start the sweep again in every worker and kill it: every
configuration used to fail as "worker process died (crash or out of memory)".
"""

import subprocess
import sys
import textwrap

import pytest
from sweep_scripts import QUOTER

UNGUARDED = "from makerlab.sweep.backends import PoolBackend\nPoolBackend(1)\n"
GUARDED = """\
from makerlab.sweep.backends import PoolBackend
if __name__ == "__main__":
    PoolBackend(1)
"""
CALLED_UNDER_GUARD = """\
from makerlab.sweep.backends import PoolBackend

def main():
    PoolBackend(1)

if __name__ == "__main__":
    main()
"""
CALLED_AT_IMPORT = """\
from makerlab.sweep.backends import PoolBackend

def main():
    PoolBackend(1)

main()
"""


def run(tmp_path, source: str) -> subprocess.CompletedProcess:
    script = tmp_path / "driver.py"
    script.write_text(textwrap.dedent(source))
    return subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)


@pytest.mark.parametrize(("source", "line"), [(UNGUARDED, 2), (CALLED_AT_IMPORT, 6)])
def test_a_pool_made_at_import_is_refused_naming_the_line(tmp_path, source, line):
    done = run(tmp_path, source)
    assert done.returncode == 1
    assert "ConfigError" in done.stderr
    assert f"driver.py starts the sweep at import (line {line})" in done.stderr
    assert "if __name__ == '__main__':" in done.stderr


@pytest.mark.parametrize("source", [GUARDED, CALLED_UNDER_GUARD])
def test_a_pool_made_under_the_main_guard_is_made(tmp_path, source):
    done = run(tmp_path, source)
    assert done.returncode == 0, done.stderr


def test_an_unguarded_sweep_stops_before_writing_anything(tmp_path):
    out = tmp_path / "out"
    done = run(tmp_path, f"""\
        from makerlab.sweep import sweep
        sweep({str(QUOTER)!r}, {{"seed": [0, 1]}}, args=["0"], out={str(out)!r},
              backend="local", progress=False, report=False)
        """)
    assert done.returncode == 1
    assert "starts the sweep at import (line 2)" in done.stderr
    assert not out.exists()
