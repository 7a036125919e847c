"""``python -m neuralstyle``: the same as the ``neuralstyle`` command."""

import sys

from neuralstyle.cli import main

if __name__ == "__main__":
    sys.exit(main())
