"""Judging a user's own function (`conformance check`, `conformance.testing.check`): the corpus for one op through
the function (framework `user`, adapters/user.py) and, beside it, through the framework's own fused function for
that op, each record judged exactly as a built-in one is; then the two compared record by record.
"""

from __future__ import annotations

import importlib
import shlex
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..adapters import registered
from ..adapters import user as user_adapter
from ..corpus.safe_yaml import Limits
from ..model.record import Record, message, unexplained
from ..model.status import Status
from . import api
from .config import USER_ADAPTER, WorkerConfig
from .events import Event
from .runner import Selection

MATCHES_THEIRS = "yours matches a registered divergence of theirs"  # a comparison's outcome that ranks last among failures
# The identity of a record without its implementation: what pairs the user's record with the framework's.
_PAIR = ("case", "op", "quantity", "dtype", "mode", "device")


def reference(framework: str, op: str) -> str | None:
    """The framework's own fused function for `op` (the first it declares): the user's function is shown beside it."""
    module = importlib.import_module(registered()[framework])
    return next((i.id for i in module.implementations() if i.op == op and not i.naive), None)


def absolute_target(target: str) -> str:
    """A file TARGET with its path made absolute, so that the re-run commands work from any folder."""
    where, _, name = target.rpartition(":")
    return f"{Path(where).resolve()}:{name}" if where.endswith(".py") else target


def configuration(spec: user_adapter.CheckSpec, limits: Limits = Limits(), log: str | None = None) -> WorkerConfig:
    """Framework `user` as this function, in this process for the check and in every worker it starts."""
    return WorkerConfig(adapters=(USER_ADAPTER,), check=spec, limits=limits, log=log)


def selection(framework: str, op: str, sel: Selection) -> Selection:
    """The run's selection: the user's function and the framework's reference, this op only."""
    ref = reference(framework, op)
    return replace(sel, frameworks=(user_adapter.NAME, framework), ops=(op,), impls=("user/*", *([ref] if ref else [])),
                   named=True)


@dataclass
class CheckResult:
    """The records of a check, the user's and the reference's, and how they compare."""
    doc: dict
    target: str
    framework: str
    op: str
    complete: bool = True
    pairs: list[tuple[dict, dict | None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        theirs = {tuple(getattr(r, k) for k in _PAIR): r for r in self.doc["records"] if r.framework == self.framework}
        self.pairs = [(r, theirs.get(tuple(getattr(r, k) for k in _PAIR))) for r in self.mine]
        self._theirs = {id(mine): t for mine, t in self.pairs}  # the framework's record beside each of the user's

    @property
    def mine(self) -> list[dict]:
        return [r for r in self.doc["records"] if r.framework == user_adapter.NAME]

    @property
    def failures(self) -> list[dict]:
        """The user's records that fail or error, and those answered in another dtype than the framework's own
        function answers the same call in (a float32 loss returned for bfloat16 logits, or the reverse)."""
        other = {id(r) for r in self.other_dtype}
        return [r for r in self.mine if unexplained(r) or id(r) in other]

    @property
    def other_dtype(self) -> list[dict]:
        return [mine for mine, theirs in self.pairs if theirs is not None and _answered(mine) and _answered(theirs)
                and _dtype(mine) != _dtype(theirs)]

    def comparison(self) -> Counter:
        """How the user's verdicts stand against the reference's, record by record: the framework's registered
        divergences (`known`) are said as such, never counted as its passes."""
        return Counter(_compared(mine, theirs) for mine, theirs in self.pairs)

    def summary(self, limit: int = 10) -> list[str]:
        counts = Counter(r.status for r in self.mine)
        ref = next((t["impl"] for _, t in self.pairs if t), "the framework's own function")
        flags = ((self.doc.get("environment") or {}).get("frameworks", {}).get(user_adapter.NAME) or {}).get("flags") or {}
        said = (f"returns: {flags['returns']} ({'inferred from one call; --returns to say otherwise' if flags.get('returns_inferred') else 'as declared'})"
                if flags.get("returns") else None)
        lines = [*([said] if said else []), f"check: {self.target} as {self.op} on {self.framework}: {len(self.mine)} records: "
                 + ", ".join(f"{counts.get(s, 0)} {s}" for s in Status if s is not Status.KNOWN and (s is not Status.SKIP or counts.get(s))),
                 f"beside {ref}: " + "; ".join(f"{n} {what}" for what, n in self.comparison().most_common())
                 + (f"; {len(self.other_dtype)} answered in another dtype than the framework's" if self.other_dtype else "")]
        # the records where the framework's own function passes come first: those are the user's to mend
        ranked = sorted(self.failures, key=lambda m: ((t := self._theirs.get(id(m))) is not None and unexplained(t),
                                                      _compared(m, self._theirs.get(id(m))) == MATCHES_THEIRS))
        for mine in ranked[:limit]:
            theirs = self._theirs.get(id(mine))
            status = theirs.status if theirs else None
            if status is Status.KNOWN and theirs.known_id:
                status = f"known as {theirs.known_id}"
            beside = "" if theirs is None else f" (theirs: {status}" + (
                f", {theirs.tol_ratio:.2g} of the tolerance)" if theirs.tol_ratio is not None else ")")
            verdict = mine.status.upper() if unexplained(mine) else "OTHER DTYPE"
            lines.append(f"  YOURS {verdict} {mine.case} {mine.quantity} {mine.dtype} {mine.mode}: "
                         f"{message_of(mine, theirs)[:160]}{beside}")
            lines.append(f"    re-run: {command(mine)}")
        if len(ranked) > limit:
            lines.append(f"  ... {len(ranked) - limit} more: summary.md lists the first of them, results.json every record")
        return lines

    def groups(self) -> list[str]:
        """The record groups of the user's function, one per case, dtype and mode ("extreme-logits/huge-positive-row
        float32 eager"): pytest ids for one test item per group (`@pytest.mark.parametrize("group", result.groups())`),
        which `-k` selects by case, dtype or mode."""
        return sorted({_group(r) for r in self.mine})

    def assert_ok(self, group: str | None = None) -> None:
        """AssertionError listing every failing record of the user's function (of one group, where given), each with
        its re-run command."""
        if not self.complete:
            raise AssertionError(f"the check of {self.target} did not finish: {self.doc.get('incomplete')}")
        if group is not None and group not in self.groups():
            raise AssertionError(f"no records of {self.target} in group {group!r}")
        failures = [r for r in self.failures if group is None or _group(r) == group]
        if failures:
            raise AssertionError("\n".join([f"{len(failures)} record(s) of {self.target} fail, error or answer in another dtype:"]
                                           + [f"{r.status}: {r.case} {r.op} {r.quantity} {r.dtype} {r.mode}: "
                                              f"{message_of(r, self._theirs.get(id(r)))}\n  re-run: {command(r)}" for r in failures]))


def _group(record: dict) -> str:
    return f"{record.case} {record.dtype} {record.mode}"


def _compared(mine: dict, theirs: dict | None) -> str:
    """One user record against the framework's record of the same call."""
    if mine.status is Status.SKIP:
        return "not run (a door that runs only where another could not)"
    if theirs is None or Status.UNSUPPORTED in (mine.status, theirs.status):
        return "not comparable (unsupported on one side)"
    if theirs.status is Status.KNOWN:
        if unexplained(mine) and _same_behaviour(mine, theirs):
            return MATCHES_THEIRS
        return "yours fails where theirs has a registered divergence" if unexplained(mine) else "yours passes where theirs has a registered divergence"
    if unexplained(mine) == unexplained(theirs):
        return "same verdict"
    return "yours fails where the framework's passes" if unexplained(mine) else "yours passes where the framework's fails"


def _same_behaviour(mine: dict, theirs: dict) -> bool:
    """Whether the user's record does what the framework's registered divergence does: raises the same exception type,
    or answers with the same behaviour (a silent finite answer, NaN)."""
    if mine.behaviour == "error" or theirs.behaviour == "error":
        return (mine.error or {}).get("type") == (theirs.error or {}).get("type")
    return mine.behaviour == theirs.behaviour and bool(mine.silent) == bool(theirs.silent)


def _answered(r: dict) -> bool:
    return r.status.ran and r.behaviour not in (None, "error")


def _dtype(r: dict) -> str:
    """The dtype a record's answer came in (out_dtype is written only where it is not the input's)."""
    return r.out_dtype or r.dtype


def message_of(r: dict, theirs: dict | None) -> str:
    """A user's record in one line: its own message, or that it answered in another dtype than the framework's."""
    if not unexplained(r) and theirs is not None and _dtype(r) != _dtype(theirs):
        return f"answered in {_dtype(r)} where the framework's own function answers in {_dtype(theirs)}"
    return message(r)


def command(r: Record) -> str:
    """`conformance check` for exactly this record of a user's function (its TARGET, op and framework from the record)."""
    framework = r.impl_id.split("/")[1]
    where, _, name = r.impl.rpartition(":")
    if where in ("__main__", "?", "") or not name.isidentifier():  # a lambda, a closure, a function of a script
        # a shell comment: pasted, it runs nothing, whatever the name holds
        return (f"# none: {shlex.quote(r.impl)} cannot be imported by name; define it at module level in an importable module "
                "or file and check module:function or path/to/file.py:function")
    q = shlex.quote  # every field: a results file is data, and a pasted command must run nothing it carries
    return " ".join(["conformance check", q(r.impl), "--op", q(r.op), "--framework", q(framework), "--case", q(r.case),
                     "--quantity", q(r.quantity), "--dtypes", q(r.dtype), "--modes", q(r.mode), "--devices", q(r.device),
                     *(["--accumulates-in", q(r.accumulates_in)] if r.accumulates_in else []), "--out", "/tmp/conformance-check"])


def run(target: str, framework: str, op: str, sel: Selection, case_paths: list[Path] | None = None, jobs: int = 2,
        registries: list[Path] | None = None, returns: str = "auto", on_event: Callable[[Event], None] = lambda msg: None,
        accumulates_in: str | None = None, limits: Limits = Limits(), log: str | None = None) -> CheckResult:
    """The corpus (or the selection) for `op` through the function named by `target`. Raises TargetError, CaseFileError,
    RegistryError or SelectionError for bad input. `log`: the file the workers' output goes to."""
    target = absolute_target(target)
    user_adapter.probe(target)  # a TARGET that names nothing, or whose import exits or crashes, is bad input before anything runs
    user_adapter.resolve(target)
    config = configuration(user_adapter.CheckSpec(target, framework, op, returns, accumulates_in), limits, log)
    # the function is this check's: in this process for the check only (a later run of the Python API does not find
    # framework `user`), in every worker through its configuration
    with config.applied():
        corpus = api.prepare(case_paths, selection(framework, op, sel), registries)
        doc, outcome = api.run_corpus(corpus, selection(framework, op, sel), jobs, on_event=on_event, config=config)
    return CheckResult(doc, target, framework, op, outcome.complete)
