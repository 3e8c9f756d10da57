"""Re-running one record anywhere: the command line that re-runs it, and a self-contained Python snippet that prints
the implementation's value, the oracle's, the tolerance and the verdict. Both find a bundled case in the installed
package and any other case file by its absolute path, so they work from any folder of a machine that has
softmax-conformance installed."""

from __future__ import annotations

import shlex

from ..corpus import bundled


def _case_files(r: dict) -> list[str]:
    """The --cases arguments that find this record's case: none for the bundled corpus (the default, wherever the
    package is installed), else the case file's absolute path."""
    path = r.case_file
    return [] if not path or bundled.is_bundled_case_file(path) else ["--cases", shlex.quote(path)]


def command(r: dict, compile_cache: str | None = None) -> str:
    """The one command that re-runs exactly this record's case, implementation, dtype, mode and quantity (in the same
    compile cache, where the run was given one: a fault of a cached program re-runs as it happened)."""
    q = shlex.quote  # every field: a results file is data, and a pasted command must run nothing it carries
    parts = ["conformance run", *_case_files(r), "--case", q(r.case), "--frameworks", q(r.framework),
             "--impl", q(r.impl_id or r.impl), "--op", q(r.op), "--quantity", q(r.quantity), "--dtypes", q(r.dtype),
             "--modes", q(r.mode), "--devices", q(r.device), "--out", "/tmp/conformance-repro"]
    if r.naive:  # a naive formula's fail counts in the exit status only when asked
        parts.append("--include-naive")
    if compile_cache:
        parts += ["--compile-cache", q(str(compile_cache))]
    return " ".join(parts)


def snippet(r: dict) -> str:
    """Python that recomputes this record and prints value, oracle, tolerance and verdict (before the registry)."""
    path = r.case_file
    where = "bundled.cases_dir()" if not path or bundled.is_bundled_case_file(path) else f"Path({path!r})"
    return f"""from pathlib import Path
import numpy as np
from conformance.corpus import bundled
from conformance.judge import oracle
from conformance.adapters import load_adapter
from conformance.corpus.cases import load
from conformance.corpus.inputs import build
from conformance.model.record import message
from conformance.run.api import judge_case
from conformance.run.runner import Selection
from conformance.judge.tolerance import tolerance

case = next(c for c in load([{where}]) if c.full_id == {r.case!r})
fw = load_adapter({r.framework!r})
impl = next(i for i in fw.implementations() if {r.impl_id or r.impl!r} in (i.id, i.name) and i.op == {r.op!r})
inputs = build(case, {r.op!r}, {r.dtype!r})
np.set_printoptions(precision=9, threshold=50)
out = fw.evaluate(impl, inputs, [{r.quantity!r}], {r.mode!r}, {r.device!r})[{r.quantity!r}]
print("value    ", out)
if not case.invalid:
    ref = oracle.compute(inputs, {r.quantity!r})
    print("oracle   ", ref.value.astype(np.float64))
    print("tolerance", tolerance(ref.scale, {r.quantity!r}, {r.dtype!r}, inputs.classes, ref.flush))
sel = Selection(({r.framework!r},), ({r.dtype!r},), ({r.device!r},), ({r.mode!r},), impls=(impl.id,),
                ops=({r.op!r},), quantities=({r.quantity!r},))
verdict = judge_case(fw, case, sel, [{r.device!r}])[0]
print("verdict  ", verdict["status"], message(verdict))
"""
