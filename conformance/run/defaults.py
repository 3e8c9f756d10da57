"""The run's defaults that the command line shows before anything runs: the worker's silence limit, the compile
cache's folder. Nothing heavy is imported here: `conformance --help` reads them."""

from __future__ import annotations

import os
from pathlib import Path

# Seconds a worker may go without sending anything (a record, progress) before it is taken for hung and stopped.
# Generous: far above the longest silence of a healthy worker (one cold compile of a backward graph,
# docs/performance.md); a framework whose import never returns is what this catches.
DEFAULT_TIMEOUT_S = 600.0


def default_compile_cache() -> Path:
    """Where the frameworks keep compiled programs between runs: $CONFORMANCE_CACHE_DIR, else the user's cache folder."""
    if os.environ.get("CONFORMANCE_CACHE_DIR"):
        return Path(os.environ["CONFORMANCE_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "softmax-conformance"
