"""``python -m hostsim``: the same as the ``hostsim`` console script."""

import sys

from hostsim.cli import main

sys.exit(main())
