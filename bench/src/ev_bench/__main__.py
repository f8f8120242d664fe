"""``python -m ev_bench``: see :mod:`ev_bench.cli`."""

import sys

from ev_bench.cli import main

sys.exit(main())
