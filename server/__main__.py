"""``python -m server`` is ``tokenmux``."""

import sys

from server.cli import main

sys.exit(main())
