"""``python -m moodtune_cli``."""

import sys

from moodtune_cli.app import main

sys.exit(main())
