"""Judging your own function from pytest: `check(fn, op=..., framework=...)` runs the corpus for that op through
`fn` in this process, beside the framework's own function, and returns a CheckResult (`records` of yours,
`summary()`, `assert_ok()`).

    from conformance.testing import check

    def test_my_softmax():
        check(my_softmax, op="softmax", framework=FRAMEWORK, modes=("eager",)).assert_ok()
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from .adapters import user as user_adapter
from .model.names import DTYPES, MODES
from .run import api
from .run import check as check_mod
from .run.check import CheckResult
from .run.config import USER_ADAPTER, WorkerConfig
from .run.runner import Selection

__all__ = ["CheckResult", "check"]


def check(fn: Callable, op: str, framework: str, *, cases: Sequence[str | Path] | None = None, case: Sequence[str] = (),
          dtypes: Sequence[str] = DTYPES, modes: Sequence[str] = MODES, quantities: Sequence[str] = (),
          devices: Sequence[str] = ("cpu",), compile_cache: str | Path | None = None, returns: str = "auto",
          accumulates_in: str | None = None) -> CheckResult:
    """`fn` (an `op` written in `framework`, one of adapters.user.FRAMEWORKS) judged on the bundled corpus (or `cases`,
    case files or folders), narrowed by `case` globs, dtypes, modes, quantities and devices. `returns`: what a
    cross-entropy without a `reduction` keyword returns (none, mean, sum; auto: inferred from one call). `accumulates_in`:
    the dtype `fn` computes in for narrower inputs (float32 for a fused kernel), by which half-precision cases are judged."""
    user_adapter.use(fn, framework, op, returns=returns, accumulates_in=accumulates_in)
    config = WorkerConfig(adapters=(USER_ADAPTER,))
    with config.applied():  # framework `user` for this check only
        sel = check_mod.selection(framework, op, Selection((), tuple(dtypes), tuple(devices), tuple(modes),
                                                           str(compile_cache) if compile_cache else None, cases=tuple(case),
                                                           quantities=tuple(quantities)))
        corpus = api.prepare([Path(p) for p in cases] if cases else None, sel)
        doc, outcome = api.run_corpus(corpus, sel, jobs=1, inline=True, config=config)  # the function object is here
    return CheckResult(doc, user_adapter.target(), framework, op, outcome.complete)
