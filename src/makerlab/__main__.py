"""``python -m makerlab``: the ``makerlab`` command (:mod:`makerlab.cli`)."""

from makerlab.cli import main

raise SystemExit(main())
