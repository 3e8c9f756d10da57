"""A record's status: the six the contract names, in the one order every count and table lists them, with the
questions the rest of the code asks of a status. No module compares a status with a string of its own
(tests/test_architecture.py checks that, and shows it can fail)."""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    """Declared in the order a reader needs them. A StrEnum: results.json writes the plain word."""
    PASS = "pass"  # the oracle agrees, within the written tolerance
    KNOWN = "known"  # a fail or error that a registry entry explains
    FAIL = "fail"  # the oracle disagrees (or the behaviour on an invalid input is not one the case allows)
    ERROR = "error"  # the call raised where a value was expected, or its process died or hung
    UNSUPPORTED = "unsupported"  # the framework does not offer this call (nothing ran)
    SKIP = "skip"  # a door that runs only where another did not (nothing was asked of the framework)

    @property
    def ran(self) -> bool:
        """The framework was asked and answered (anything but unsupported and skip): the record has a verdict."""
        return self not in (Status.UNSUPPORTED, Status.SKIP)

    @property
    def unexplained(self) -> bool:
        """The oracle says it is wrong and no registered divergence explains it: what `conformance run` exits 1 for."""
        return self in (Status.FAIL, Status.ERROR)

    @property
    def badness(self) -> int:
        """How bad a status is when a record moves between two runs: 0 pass; 1 explained or not run; 2 unexplained."""
        return 2 if self.unexplained else 0 if self is Status.PASS else 1

    def worse_than(self, before: Status) -> bool:
        """A move from `before` to this status is for the worse: it leaves pass, or it becomes worse by badness."""
        return self is not before and (before is Status.PASS or self.badness > before.badness)

    @property
    def severity(self) -> int:
        """Which status a heatmap cell shows, worst first: unexplained, known, pass, then what did not run."""
        return 0 if self.unexplained else 1 if self is Status.KNOWN else 2 if self is Status.PASS else 3


STATUSES = tuple(s.value for s in Status)
