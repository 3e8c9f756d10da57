"""`python -m conformance`: the command line, for an environment without the `conformance` script on its path."""

import sys

from .app.cli import main

sys.exit(main())
