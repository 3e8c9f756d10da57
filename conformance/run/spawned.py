"""A run's worker process begins here: a module that imports nothing of its own, so that its output goes to the run's
log before anything else is imported. The rest of the worker's arguments come pickled, unpickled only after that: a
broken install (a release's NumPy that does not import, in `conformance history`) then leaves its traceback in the
log, and the terminal sees one line saying the worker was lost, not a traceback per worker."""

from __future__ import annotations

import os
import pickle
from multiprocessing.connection import Connection


def to_log(path: str | None, truncate: bool = False) -> None:
    """Send this process's stdout and stderr (native libraries' too: file descriptors 1 and 2) to a log: the run's,
    after what the parent and the other workers wrote there, or a file of its own begun afresh (`truncate`)."""
    if path:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if truncate else os.O_APPEND), 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)


def worker(log: str | None, call: bytes, q: Connection) -> None:
    """`call`, a pickled (function, *arguments) (the pool's worker_main and its shard), run with the pipe `q` first,
    once this process writes to `log`: unpickling it imports the function's module, and so NumPy and the core."""
    to_log(log)
    target, *arguments = pickle.loads(call)
    target(q, *arguments)
