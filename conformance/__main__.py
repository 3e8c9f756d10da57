"""`python -m conformance`: the command line, for an environment without the `conformance` script on its path."""

import sys

from .app.main import main

sys.exit(main())
