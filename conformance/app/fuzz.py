"""`conformance fuzz`: differential fuzzing of every installed framework against the oracle (Hypothesis).

Hypothesis draws an op, a dtype, a shape (up to 16 x 64), logits at a random scale mixed with the values where
kernels break (+-inf, NaN, subnormals, magnitudes up to 3e38), labels and the SPEC's options (reduction, label
smoothing, class weights, ignore_index); every fused implementation of every selected framework is run, in the
selected modes, and judged against the oracle exactly as in `conformance run` (the known-divergence registry
applied). An input with a NaN or +inf logit, or a row masked entirely, has no answer: it is judged as an
`invalid` case (an error or a non-finite output passes, a finite one is a silent wrong answer). The first input
on which any implementation fails is shrunk by Hypothesis and written out as a case file (suite
`fuzz-found-SEED`) that `conformance run --cases FILE` replays, to be reviewed and moved into cases/. The run is
bounded by an example budget and a wall-clock budget.

Dense labels are drawn as distributions (non-negative, rows summing to 1), because the divergences on
labels that are not distributions are already in the corpus and the registry.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml
from hypothesis import HealthCheck, find, settings
from hypothesis import strategies as st
from hypothesis.errors import NoSuchExample

from ..adapters import load_adapter, package_versions
from ..corpus.cases import Case, Options
from ..judge import known
from ..model.ops import op as op_spec
from ..model.record import Record, unexplained
from ..model.record import message as reason
from ..run.api import judge_case
from ..run.runner import Selection

SCALES = (1.0, 10.0, 100.0, 1e4)
# Where kernels break: infinities (masks), NaN, subnormal float32/float16, and magnitudes near the formats' limits.
EDGES = (float("inf"), float("-inf"), float("nan"), 1e-40, -1e-40, 1e-7, 60000.0, -60000.0, 1e30, -1e30, 3.0e38, -3.0e38)


def _value(draw, scale: float):
    if draw(st.integers(0, 9)) == 0:  # one value in ten from the edges
        return draw(st.sampled_from(EDGES))
    return round(draw(st.floats(-1.0, 1.0, allow_nan=False, width=32)) * scale, 6)


@dataclass
class FuzzReport:
    examples: int = 0
    covered: set = field(default_factory=set)  # (op, dtype) pairs exercised
    found: dict | None = None  # the shrunk failing record
    case_file: Path | None = None
    seconds: float = 0.0


def _has_answer(logits: list[list[float]]) -> bool:
    return not any(math.isnan(v) or v == math.inf for row in logits for v in row) and all(any(v > -math.inf for v in row) for row in logits)


@st.composite
def drawn_case(draw: st.DrawFn, ops: tuple[str, ...], dtypes: tuple[str, ...]) -> Case:
    op = draw(st.sampled_from(ops))
    dtype = draw(st.sampled_from(dtypes))
    rows, classes = draw(st.integers(1, 16)), draw(st.integers(1, 64))
    scale = draw(st.sampled_from(SCALES))
    logits = [[_value(draw, scale) for _ in range(classes)] for _ in range(rows)]
    labels = sparse = None
    options = Options()
    spec = op_spec(op)  # what the op takes (the op table): dense labels, class indices, a mask, or nothing
    if spec.labels == "dense":
        raw = [[draw(st.floats(0.0, 1.0, width=32)) for _ in range(classes)] for _ in range(rows)]
        labels = [[v / sum(r) for v in r] if sum(r) > 0 else [1.0] + [0.0] * (classes - 1) for r in raw]
    if spec.labels == "sparse":
        sparse = [draw(st.integers(0, classes - 1)) for _ in range(rows)]
    if spec.loss:
        weight = tuple(draw(st.sampled_from((0.5, 1.0, 2.0))) for _ in range(classes)) if draw(st.booleans()) else None
        ignore = draw(st.sampled_from((None, -100, 0))) if spec.labels == "sparse" else None
        options = Options(reduction=draw(st.sampled_from(("none", "sum", "mean"))), label_smoothing=draw(st.sampled_from((0.0, 0.0, 0.1))),
                          weight=weight, ignore_index=ignore)
    mask = [[int(draw(st.booleans())) for _ in range(classes)] for _ in range(rows)] if spec.masked else None
    kept = logits if mask is None else [[v if m else -math.inf for v, m in zip(r, mr)] for r, mr in zip(logits, mask)]
    quantities = ("value", *spec.gradients)
    name = f"{op}-{dtype}-{rows}x{classes}-scale-{scale:g}"
    return Case(suite="fuzz", id=name, description=f"Drawn by conformance fuzz: {op}, {dtype}, {rows}x{classes}, logit scale {scale:g}.",
                path="<fuzz>", ops=(op,), dtypes=(dtype,), logits=_spelled(logits), labels=labels, sparse_labels=sparse, mask=mask,
                options=options, quantities=quantities, invalid=not _has_answer(kept),
                cotangent=None)  # the case format's default (Case.cotangent_for), as a written-out case gets it


def _spelled(logits: list[list[float]]) -> list[list]:
    """Non-finite values as the case format spells them (inf, -inf, nan), so the case can be written out as drawn."""
    return [[v if math.isfinite(v) else ("nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")) for v in row] for row in logits]


def _failures(case: Case, adapters: dict, entries, packages: dict, modes) -> list[dict]:
    records = []
    for name, adapter in adapters.items():
        sel = Selection((name,), case.dtypes, ("cpu",), tuple(modes))
        records.extend(r for r in judge_case(adapter, case, sel) if not r.naive)
    records, _ = known.apply(records, entries, packages)
    return [r for r in records if unexplained(r)]


def fuzz(frameworks: tuple[str, ...], ops: tuple[str, ...], dtypes: tuple[str, ...], max_examples: int, seconds: float,
         out: Path, seed: int, modes: tuple[str, ...] = ("eager",), registry: list[Path] | None = None) -> FuzzReport:
    adapters = {name: load_adapter(name) for name in frameworks}
    packages = {name: package_versions(a) for name, a in adapters.items()}
    entries = known.load(registry)
    report = FuzzReport()
    started = time.monotonic()
    deadline = started + seconds

    found_one = False

    def disagrees(case: Case) -> bool:
        nonlocal found_one
        if time.monotonic() > deadline and not found_one:
            return False  # budget spent: let Hypothesis run out of examples cheaply
        # (once an example failed, every call is judged for real: Hypothesis replays and shrinks it, and a budget
        # that ran out in between would make the same input answer otherwise: a "flaky" failure)
        report.examples += 1
        report.covered.add((case.ops[0], case.dtypes[0]))
        failed = bool(_failures(case, adapters, entries, packages, modes))
        found_one |= failed
        return failed

    try:
        with np.errstate(all="ignore"):
            minimal = find(drawn_case(ops, dtypes), disagrees, random=random.Random(seed),
                           settings=settings(max_examples=max_examples, deadline=None, database=None,
                                             suppress_health_check=list(HealthCheck)))
    except NoSuchExample:
        report.seconds = time.monotonic() - started
        return report
    report.found = _failures(minimal, adapters, entries, packages, modes)[0]
    report.case_file = write_case(minimal, report.found, out, seed)
    report.seconds = time.monotonic() - started
    return report


def write_case(case: Case, record: Record, out: Path, seed: int) -> Path:
    """The shrunk input as a case file of the SPEC's format, ready to review and move into cases/."""
    out.mkdir(parents=True, exist_ok=True)
    entry = {
        "id": case.id,
        "description": (f"Found by conformance fuzz (seed {seed}): {record.framework} {record.impl} {record.quantity} "
                        f"{record.status}: {reason(record)}"),
        "source": f"conformance fuzz --seed {seed}",
        "ops": list(case.ops), "dtypes": list(case.dtypes), "logits": case.logits,
        "quantities": list(case.quantities or ()),
    }
    if case.labels is not None:
        entry["labels"] = case.labels
    if case.sparse_labels is not None:
        entry["sparse_labels"] = case.sparse_labels
    if case.mask is not None:
        entry["mask"] = [[bool(m) for m in row] for row in case.mask]
    options = {k: v for k, v in (("reduction", case.options.reduction), ("label_smoothing", case.options.label_smoothing),
                                 ("weight", list(case.options.weight) if case.options.weight else None),
                                 ("ignore_index", case.options.ignore_index)) if v not in (None, "none", 0.0)}
    if options:
        entry["options"] = options
    if case.invalid:
        entry["invalid"] = True
    path = out / f"fuzz-found-{seed}.yaml"
    doc = {"suite": f"fuzz-found-{seed}", "description": "Disagreements found by differential fuzzing; review, then move into cases/.",
           "cases": [entry]}
    path.write_text(yaml.safe_dump(doc, sort_keys=False, width=120), encoding="utf-8")
    return path
