"""One selection rule (model/selection.py) for the runner, the registry and the gate: a stable id and a label name
the same implementation everywhere, and a name that holds glob characters matches itself."""

from __future__ import annotations

from results_factory import record

from conformance.adapters.base import Impl
from conformance.corpus import bundled
from conformance.corpus.cases import load
from conformance.gate import records as gate
from conformance.model.names import OPS
from conformance.model.selection import impl_matches, left_out_by, matches
from conformance.run.runner import Selection


def test_a_stable_id_selects_the_same_records_in_the_runner_and_in_the_gate():
    """`--impl torch/softmax` ran torch.softmax: a baseline record of it that the current run lacks is missing, not
    narrowed out (the gate once matched labels only, and excused it)."""
    impl = Impl(framework="torch", op="softmax", name="torch.softmax", key="softmax", forward=lambda *a: None)
    sel = Selection(("torch",), ("float32",), ("cpu",), ("eager",), impls=("torch/softmax",))
    assert sel.wants_impl(impl)
    selected = record(impl="torch.softmax", impl_id="torch/softmax")
    other = record(impl="torch.nn.functional.softmax", impl_id="torch/functional")
    recorded = {"impls": ["torch/softmax"]}
    assert left_out_by(recorded, selected) is None and left_out_by(recorded, other) == "--impl torch/softmax"
    baseline = {"records": [selected, other], "environment": {}}
    current = {"records": [], "environment": {"frameworks": {"torch": {}}}, "selection": recorded}
    report = gate.GateReport()
    gate.compare_records(baseline, current, report)
    assert any("1 baseline record(s) of torch missing" in r for r in map(str, report.regressions)), report.regressions
    assert any("--impl torch/softmax: 1 baseline records not compared" in n for n in report.notes), report.notes


def test_a_name_with_glob_characters_matches_itself_first():
    assert matches("suite/a[1]*?", ["suite/a[1]*?"]) and matches("suite/a1xy", ["suite/a[1]*?"])  # itself, and as a glob
    assert not matches("suite/a[1]", ["suite/a[2]"])
    assert impl_matches("fw/key", "f(x)[t]", ["f(x)[t]"]) and impl_matches("fw/key", "label", ["fw/*"])


def test_the_quick_selection_covers_every_op():
    """`run --quick` is the first answer from every framework, op and mode: each op has a case in it."""
    quick = [c for c in load([bundled.cases_dir()]) if matches(c.full_id, bundled.QUICK_CASES)]
    assert {op for c in quick for op in c.ops} == set(OPS)
    assert all(any(matches(c.full_id, [glob]) for c in quick) for glob in bundled.QUICK_CASES)  # no glob matches nothing


def test_the_quick_selection_leaves_the_naive_formulas_out_and_says_so():
    """`run --quick` runs the frameworks' own functions: a naive formula is not run, the recorded selection says so, and
    the gate reads a baseline's naive record as narrowed out, not missing; an entry that may explain a naive formula is
    not judged stale by such a run (the full run still has them, and --include-naive brings them back)."""
    from conformance.app.cli import run_request
    from conformance.app.parser import build_parser
    from conformance.judge.known import Entry

    args = build_parser().parse_args(["run", "--quick", "--frameworks", "numpy"])
    sel = run_request(args).selection
    own = Impl(framework="numpy", op="softmax", name="scipy.special.softmax", key="scipy/softmax", forward=lambda *a: None)
    formula = Impl(framework="numpy", op="softmax", name="np.exp(x) / sum", key="naive/softmax", forward=lambda *a: None, naive=True)
    assert sel.wants_impl(own) and not sel.wants_impl(formula) and sel.to_json()["naive"] is False
    assert run_request(build_parser().parse_args(["run", "--quick", "--frameworks", "numpy", "--include-naive"])).selection.wants_impl(formula)
    assert run_request(build_parser().parse_args(["run", "--frameworks", "numpy"])).selection.to_json()["naive"] is True
    recorded = sel.to_json()
    where = {"framework": "numpy", "case": "published-values/softmax-four-logits", "dtype": "float32"}
    naive_record = record(impl="np.exp(x) / sum", impl_id="numpy/naive/softmax", naive=True, **where)
    assert left_out_by(recorded, naive_record) == "--no-naive or --quick (the naive formulas left out)"
    assert left_out_by(recorded, record(impl="scipy.special.softmax", impl_id="numpy/scipy/softmax", **where)) is None
    assert left_out_by({"impls": []}, naive_record) is None  # a selection recorded before the field: every formula ran

    def entry(impl: list[str] | None) -> Entry:
        match = {"framework": ["numpy"], "case": ["suite/a"], **({"impl": impl} if impl else {})}
        return Entry(id="e", kind="bug", reason="r", link="https://example.org", match=match)

    for impl, covered in ((["numpy/scipy/softmax"], True), (["numpy/naive/softmax"], False), (["numpy/*"], False), (None, False)):
        without = {"frameworks": ["numpy"], "naive": False}  # narrowed by nothing else
        assert entry(impl).covered_by(without, {"suite/a"}, {"suite/a"}) is covered, impl
        assert entry(impl).covered_by({**without, "naive": True}, {"suite/a"}, {"suite/a"}) is True, impl
