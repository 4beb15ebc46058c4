"""The replay core compiled by mypyc against the same code in pure Python (issue 12,
docs/performance.md "Tried: mypyc").

Copies ``src/`` twice into a temporary directory, applies to both copies the edits mypyc
needed (``EDITS``: each must match its file once, or the script stops naming it), compiles
``MODULES`` of one copy with mypyc, then runs ``bench_quoter.py --depths 20`` and
``bench_orderpath.py`` on the two copies in turn (``PYTHONPATH``), ``--rounds`` times, and
prints their figures. Nothing under ``src/`` changes. Needs mypy (``pip install mypy``), a C
compiler and the Python headers (about 3 minutes of compiling); without them it says so and
exits 0. Not part of ``run_all.py``.

    python bench/bench_mypyc.py [--rounds 2] [--repeat 5] [--keep DIR]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: The modules compiled: the hot ones of the quoter's and the tutorial's profiles that mypyc
#: takes (queue.py, journal.py and positions.py left out: see the performance doc).
MODULES = ["makerlab/sim/loop.py", "makerlab/sim/venue.py", "makerlab/sim/matching.py",
           "makerlab/sim/timeline.py", "makerlab/sim/mock_feed.py", "makerlab/sim/resting.py",
           "makerlab/core/orders.py", "makerlab/core/lob.py", "makerlab/core/trades.py",
           "makerlab/core/ringbuffer.py", "makerlab/core/callbacks.py",
           "makerlab/core/instruments.py", "makerlab/trading/oms.py"]

_ATTR = "from __future__ import annotations\n\nfrom mypy_extensions import mypyc_attr\n"
_FUTURE = "from __future__ import annotations\n"

#: (file, old, new): what compiled code refuses, and its spelling that both accept.
EDITS = [
    # a class attribute read through the class must be declared one
    ("sim/mock_feed.py", "from typing import Any\n", "from typing import Any, ClassVar\n"),
    ("sim/mock_feed.py", "    SCHEDULED = 4", "    SCHEDULED: ClassVar[int] = 4"),
    # a ClassVar of a frozen slots dataclass became an __init__ field (read-only) compiled
    ("sim/matching.py", "from typing import ClassVar\n", ""),
    ("sim/matching.py", "    partial: ClassVar[bool] = True\n",
     "    @property\n    def partial(self) -> bool:\n        return True\n"),
    ("sim/matching.py", "    partial: ClassVar[bool] = False\n",
     "    @property\n    def partial(self) -> bool:\n        return False\n"),
    # classes subclassed by interpreted code (MockOMS, paper's _Queue, the tests' NaiveEngine)
    ("sim/matching.py", _FUTURE, _ATTR),
    ("sim/matching.py", "\nclass MatchingEngine:",
     "\n@mypyc_attr(allow_interpreted_subclasses=True)\nclass MatchingEngine:"),
    ("sim/timeline.py", _FUTURE, _ATTR),
    ("sim/timeline.py", "\nclass EventQueue:",
     "\n@mypyc_attr(allow_interpreted_subclasses=True)\nclass EventQueue:"),
    ("trading/oms.py", _FUTURE, _ATTR),
    ("trading/oms.py", "\nclass OMS:",
     "\n@mypyc_attr(allow_interpreted_subclasses=True)\nclass OMS:"),
    # a compiled class has no __dict__: BookTape's memo becomes a field
    ("sim/timeline.py", "from dataclasses import dataclass\n",
     "from dataclasses import dataclass, field\n"),
    ("sim/timeline.py", "    ask_size: np.ndarray\n\n    def __len__",
     "    ask_size: np.ndarray\n    _memo: dict[str, Any] = field(default_factory=dict, init=False,"
     " repr=False, compare=False)\n\n    def __len__"),
    ("sim/timeline.py", "self.__dict__.get(name)", "self._memo.get(name)"),
    ("sim/timeline.py", "self.__dict__[name] =", "self._memo[name] ="),
    # Order's fields hold raw values until __post_init__ converts them: a native class
    # refuses them (its attributes are type-checked), so Order stays a Python class, and
    # the compiled __post_init__ reads the status without the checked read
    ("core/orders.py", _FUTURE, _ATTR),
    ("core/orders.py", "@dataclass(slots=True)\nclass Order:",
     "@mypyc_attr(native_class=False)\n@dataclass(slots=True)\nclass Order:"),
    ("core/orders.py",
     "        if type(self.ord_status) is not OrderStatus:  # a member converts to itself\n"
     "            self.ord_status = OrderStatus.of(self.ord_status)\n",
     "        status = getattr(self, \"ord_status\")\n"
     "        if type(status) is not OrderStatus:\n"
     "            self.ord_status = OrderStatus.of(status)\n"),
    # object.__new__(Order) is refused compiled, and the import-time check of _copy_into
    # set every field to an int
    ("core/orders.py", "_new = object.__new__\n", "_new = Order.__new__\n"),
    ("core/orders.py",
     "    src, dst = object.__new__(Order), object.__new__(Order)\n"
     "    for k, name in enumerate(_NAMES):\n"
     "        setattr(src, name, k)\n"
     "    if _values(_copy_into(dst, src)) != tuple(range(len(_NAMES))):\n",
     "    src = Order(\"a\", \"b\", \"c\", \"d\", Decimal(1), Decimal(2), \"e\", \"f\", True,\n"
     "                OrderStatus.NEW, Decimal(3), Decimal(4), 5, Decimal(6), \"g\", 7)\n"
     "    try:\n"
     "        copied = _values(_copy_into(_new(Order), src))\n"
     "    except AttributeError:\n"
     "        copied = None\n"
     "    if copied != _values(src):\n"),
]


def missing() -> str | None:
    """Why mypyc cannot build here, or ``None``."""
    if importlib.util.find_spec("mypyc") is None:
        return "mypy (mypyc) is not installed"
    if shutil.which(os.environ.get("CC", "cc")) is None:
        return "no C compiler"
    if not (Path(sysconfig.get_paths()["include"]) / "Python.h").exists():
        return "no Python headers"
    return None


def prepared(dest: Path) -> Path:
    """A copy of ``src/`` (and the mypy settings) under ``dest`` with ``EDITS`` applied."""
    src = dest / "src"
    shutil.copytree(ROOT / "src", src, ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    shutil.copy(ROOT / "pyproject.toml", dest)
    for name, old, new in EDITS:
        path = src / "makerlab" / name
        text = path.read_text()
        if text.count(old) != 1:
            raise SystemExit(f"edit no longer applies to {name}: {old.strip()[:60]!r}")
        path.write_text(text.replace(old, new))
    return src


def bench(src: Path, repeat: int) -> str:
    env = {**os.environ, "PYTHONPATH": str(src)}
    out = []
    for args in (["bench_quoter.py", "--depths", "20", "--repeat", str(repeat)],
                 ["bench_orderpath.py", "--repeat", str(repeat)]):
        done = subprocess.run([sys.executable, str(ROOT / "bench" / args[0]), *args[1:]],
                              env=env, capture_output=True, text=True, check=True)
        out.append(done.stdout.strip())
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description="The replay core compiled by mypyc against"
                                     " the same code in pure Python.")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep", type=Path,
                        help="a new directory to build in and keep (default: a temp dir)")
    args = parser.parse_args()
    why = missing()
    if why:
        print(f"skipped: {why}")
        return 0
    tmp = args.keep or Path(tempfile.mkdtemp(prefix="makerlab-mypyc-"))
    try:
        pure, compiled = prepared(tmp / "pure"), prepared(tmp / "compiled")
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "mypyc", *MODULES], cwd=compiled, check=True,
                       stdout=subprocess.DEVNULL)
        print(f"mypyc: {len(MODULES)} modules compiled in {time.perf_counter() - started:.0f} s")
        for r in range(1, args.rounds + 1):
            for label, src in (("pure Python", pure), ("compiled", compiled)):
                print(f"\n=== round {r}, {label} (load average {os.getloadavg()[0]:.2f})")
                print(bench(src, args.repeat), flush=True)
    finally:
        if args.keep is None:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
