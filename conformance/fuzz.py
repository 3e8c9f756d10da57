"""`conformance fuzz`: differential fuzzing of every installed framework against the oracle (Hypothesis).

Hypothesis draws an op, a dtype, a shape, logits at a random scale, labels and options; every fused
implementation of every installed framework is run and judged against the oracle exactly as in
`conformance run` (known divergences applied). The first input on which any implementation fails is
shrunk by Hypothesis to a minimal one and written out as a ready YAML case (suite `fuzz-found`), to be
reviewed and moved into cases/. The run is bounded by an example budget and a wall-clock budget.

Dense labels are drawn as distributions (non-negative, rows summing to 1), because the divergences on
labels that are not distributions are already in the corpus and the registry.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml
from hypothesis import HealthCheck, find, settings
from hypothesis import strategies as st
from hypothesis.errors import NoSuchExample

from . import known
from .adapters import load_adapter, package_versions
from .cases import Case, Options
from .runner import Selection, judge_case
from .summary import reason

SCALES = (1.0, 10.0, 100.0, 1e4)


@dataclass
class FuzzReport:
    examples: int = 0
    covered: set = field(default_factory=set)  # (op, dtype) pairs exercised
    found: dict | None = None  # the shrunk failing record
    case_file: Path | None = None
    seconds: float = 0.0


@st.composite
def drawn_case(draw, ops: tuple[str, ...], dtypes: tuple[str, ...]) -> Case:
    op = draw(st.sampled_from(ops))
    dtype = draw(st.sampled_from(dtypes))
    rows, classes = draw(st.integers(1, 4)), draw(st.integers(1, 8))
    scale = draw(st.sampled_from(SCALES))
    unit = st.floats(-1.0, 1.0, allow_nan=False, width=32)
    logits = [[round(draw(unit) * scale, 6) for _ in range(classes)] for _ in range(rows)]
    labels = sparse = None
    options = {}
    if op == "softmax_cross_entropy":
        raw = [[draw(st.floats(0.0, 1.0, width=32)) for _ in range(classes)] for _ in range(rows)]
        labels = [[v / sum(r) for v in r] if sum(r) > 0 else [1.0] + [0.0] * (classes - 1) for r in raw]
    if op == "sparse_softmax_cross_entropy":
        sparse = [draw(st.integers(0, classes - 1)) for _ in range(rows)]
    if op in ("softmax_cross_entropy", "sparse_softmax_cross_entropy"):
        options["reduction"] = draw(st.sampled_from(("none", "sum", "mean")))
    quantities = ("value", "grad_logits") + (("grad_labels",) if op == "softmax_cross_entropy" else ())
    name = f"{op}-{dtype}-{rows}x{classes}-scale-{scale:g}"
    return Case(suite="fuzz", id=name, description=f"Drawn by conformance fuzz: {op}, {dtype}, {rows}x{classes}, logit scale {scale:g}.",
                path="<fuzz>", ops=(op,), dtypes=(dtype,), logits=logits, labels=labels, sparse_labels=sparse,
                options=Options(reduction=options.get("reduction", "none")), quantities=quantities,
                cotangent={"generate": "normal", "seed": 0} if op == "softmax" else "ones")


def _failures(case: Case, adapters: dict, entries, packages: dict, modes) -> list[dict]:
    records = []
    for name, adapter in adapters.items():
        sel = Selection((name,), case.dtypes, ("cpu",), tuple(modes))
        records.extend(r for r in judge_case(adapter, case, sel) if not r["naive"])
    known.apply(records, entries, packages)
    return [r for r in records if r["status"] in ("fail", "error")]


def fuzz(frameworks: tuple[str, ...], ops: tuple[str, ...], dtypes: tuple[str, ...], max_examples: int, seconds: float,
         out: Path, seed: int, modes: tuple[str, ...] = ("eager",)) -> FuzzReport:
    adapters = {name: load_adapter(name) for name in frameworks}
    packages = {name: package_versions(a) for name, a in adapters.items()}
    entries = known.load()
    report = FuzzReport()
    started = time.monotonic()
    deadline = started + seconds

    def disagrees(case: Case) -> bool:
        if time.monotonic() > deadline:
            return False  # budget spent: let Hypothesis run out of examples cheaply
        report.examples += 1
        report.covered.add((case.ops[0], case.dtypes[0]))
        return bool(_failures(case, adapters, entries, packages, modes))

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


def write_case(case: Case, record: dict, out: Path, seed: int) -> Path:
    """The shrunk input as a case file of the SPEC's format, ready to review and move into cases/."""
    out.mkdir(parents=True, exist_ok=True)
    entry = {
        "id": case.id,
        "description": (f"Found by conformance fuzz (seed {seed}): {record['framework']} {record['impl']} {record['quantity']} "
                        f"{record['status']}: {reason(record)}"),
        "source": f"conformance fuzz --seed {seed}",
        "ops": list(case.ops), "dtypes": list(case.dtypes), "logits": case.logits,
        "quantities": list(case.quantities or ()),
    }
    if case.labels is not None:
        entry["labels"] = case.labels
    if case.sparse_labels is not None:
        entry["sparse_labels"] = case.sparse_labels
    if case.options.reduction != "none":
        entry["options"] = {"reduction": case.options.reduction}
    path = out / f"fuzz-found-{seed}.yaml"
    doc = {"suite": f"fuzz-found-{seed}", "description": "Disagreements found by differential fuzzing; review, then move into cases/.",
           "cases": [entry]}
    path.write_text(yaml.safe_dump(doc, sort_keys=False, width=120), encoding="utf-8")
    return path
