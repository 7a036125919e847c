"""``python -m neuralstyle``: the same as the ``neuralstyle`` command."""

import sys

from neuralstyle.cli import main

sys.exit(main())
