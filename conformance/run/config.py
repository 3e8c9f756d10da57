"""How a worker is set up, as one typed value carried with every shard the pool starts (and applied in this process
for an inline run), instead of environment variables that spawned processes inherit and module globals rewritten in
passing: the adapters a run adds (a check's function under test), the function `conformance check` judges, the case
files' size limits, and the file a worker's output goes to."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

from .. import adapters
from ..adapters import user as user_adapter
from ..corpus import safe_yaml


@dataclass(frozen=True)
class WorkerConfig:
    adapters: tuple[tuple[str, str], ...] = ()  # (framework, adapter module) beside the built-in and the user's
    check: user_adapter.CheckSpec | None = None  # the function under `conformance check`, by its TARGET
    limits: safe_yaml.Limits = safe_yaml.Limits()  # --max-file-mb, --max-elements
    log: str | None = None  # the file a worker's stdout and stderr go to (the run's run.log.partial)

    def apply(self) -> WorkerConfig:
        """Set this process up (a worker does at its start); returns what was set before."""
        previous = WorkerConfig(tuple(adapters.use_adapters(dict(self.adapters)).items()), None, safe_yaml.set_limits(self.limits))
        if self.check is not None:  # None leaves a function handed over in this process (check()) as it is
            user_adapter.configure(self.check)
        return previous

    @contextlib.contextmanager
    def applied(self) -> Iterator[WorkerConfig]:
        """This configuration in this process for the block (the parent's own reading of cases and adapters, an
        inline run), what was there before put back afterwards."""
        previous = self.apply()
        try:
            yield self
        finally:
            previous.apply()


USER_ADAPTER = ("user", "conformance.adapters.user")  # the framework `check` registers its function as
