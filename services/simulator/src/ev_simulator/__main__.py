"""``python -m ev_simulator``: the same as the ``ev-simulator`` command."""

import sys

from ev_simulator.cli import main

if __name__ == "__main__":
    sys.exit(main())
