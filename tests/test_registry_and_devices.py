"""The known-divergence registry decides the exit code; the GPU axis skips cleanly where there is no GPU."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from results_factory import load as load_results
from results_factory import record

from conformance.app.cli import main
from conformance.corpus import bundled
from conformance.judge import known
from conformance.model.record import message as record_message
from conformance.model.status import Status

ROOT = Path(__file__).resolve().parent.parent
CASE = bundled.cases_dir() / "extreme-logits.yaml"


def test_registry_entries_are_well_formed():
    entries = known.load()
    assert entries and all(e.link.startswith("http") and e.kind in known.KINDS and e.reason for e in entries)


def test_removing_an_entry_makes_the_run_name_the_records(tmp_path, capsys):
    args = ["run", "--cases", str(CASE), "--frameworks", "numpy", "--modes", "eager", "--jobs", "1"]
    assert main([*args, "--out", str(tmp_path / "with")]) == 0
    doc = yaml.safe_load(bundled.registry_file().read_text())
    doc["divergences"] = [e for e in doc["divergences"] if e["id"] != "naive-formula-on-extreme-logits"]
    reduced = tmp_path / "reduced.yaml"
    reduced.write_text(yaml.safe_dump(doc))
    capsys.readouterr()
    # the naive formulas are counted, and fail the run only when asked (as the gate gates them only when asked)
    assert main([*args, "--out", str(tmp_path / "without"), "--known", str(reduced)]) == 0
    assert "naive-formula record(s) failed" in capsys.readouterr().out
    assert main([*args, "--out", str(tmp_path / "without"), "--known", str(reduced), "--include-naive"]) == 1
    out = capsys.readouterr().out
    assert "FAIL extreme-logits/huge-positive-row numpy naive: np.exp(x) / np.sum(np.exp(x))" in out


def _entry(**match) -> dict:
    return {"id": "pretend-scipy-softmax-is-wrong", "match": {"framework": "numpy", "impl": "scipy.special.softmax", **match},
            "kind": "bug", "explains": "accuracy", "reason": "a test entry", "link": "https://example.org/stale"}


def test_stale_entry_is_reported_only_where_the_run_covered_it(tmp_path, capsys):
    args = ["run", "--cases", str(CASE), "--frameworks", "numpy", "--modes", "eager", "--jobs", "1"]
    for name, entry, stale in (("covered", _entry(case="extreme-logits/*", mode="eager"), True),
                               ("outside", _entry(), False)):  # the entry speaks for every suite and mode: one file, eager only says nothing
        reg = tmp_path / f"{name}.yaml"
        reg.write_text(yaml.safe_dump({"divergences": [entry]}))
        main([*args, "--out", str(tmp_path / name), "--known", str(reg)])
        out = capsys.readouterr().out
        doc = load_results(tmp_path / name / "results.json")
        assert ("stale known divergence: pretend-scipy-softmax-is-wrong" in out) is stale, out
        assert [e["id"] for e in doc["stale_known"]] == (["pretend-scipy-softmax-is-wrong"] if stale else [])


@pytest.mark.parametrize("match, needle", [
    ({"framework": "nmupy"}, "match.framework 'nmupy' matches no registered framework"),
    ({"framework": "numpy", "case": "extreme-logits/no-such-case"}, "match.case 'extreme-logits/no-such-case' matches no case of the corpus"),
    ({"framework": "numpy", "dtype": "float8"}, "match.dtype 'float8' matches no dtype"),
])
def test_registry_entry_that_matches_nothing_is_exit_2(tmp_path, capsys, match, needle):
    reg = tmp_path / "bad.yaml"
    reg.write_text(yaml.safe_dump({"divergences": [{**_entry(), "match": match}]}))
    code = main(["run", "--cases", str(CASE), "--frameworks", "numpy", "--jobs", "1", "--out", str(tmp_path / "o"), "--known", str(reg)])
    err = capsys.readouterr().err
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "o").exists()


def test_versions_apply_per_package(tmp_path):
    """`versions: {optax: "<0.2.7"}` reads optax's version, not the framework's first version string."""
    reg = tmp_path / "v.yaml"
    reg.write_text(yaml.safe_dump({"divergences": [{**_entry(), "versions": {"scipy": "<1.0", "numpy": ">=1"}},
                                                   {**_entry(), "id": "plain", "versions": ">=2"}]}))
    per_package, plain = known.load(reg)
    one = record(framework="numpy", impl="scipy.special.softmax", behaviour="finite")
    assert not per_package.selects(one, {"numpy": "2.4.6", "scipy": "1.17.1"})
    assert per_package.selects(one, {"numpy": "2.4.6", "scipy": "0.9"})
    assert not per_package.selects(one, {"numpy": "2.4.6"})  # a range on a package that was not recorded does not select
    assert plain.selects(one, {"numpy": "2.4.6"}) and not plain.selects(one, {"numpy": "1.26.0"})  # the framework's own


def test_the_frameworks_own_range_reads_whichever_of_its_wheels_is_installed(tmp_path):
    """`versions: "<2.17"` is TensorFlow's own release whether the machine installed the `tensorflow` wheel (a GPU
    machine) or `tensorflow-cpu`: an entry scoped to `tensorflow-cpu` explained a 2.16 crash on CPU machines only."""
    reg = tmp_path / "v.yaml"
    reg.write_text(yaml.safe_dump({"divergences": [{**_entry(), "match": {"framework": "tensorflow"}, "versions": "<2.17"}]}))
    (entry,) = known.load(reg)
    tf = record(framework="tensorflow", impl="tensorflow/nn/softmax", behaviour="finite")
    assert entry.selects(tf, {"tensorflow": "2.16.2", "keras": "3.15.1"})
    assert entry.selects(tf, {"tensorflow-cpu": "2.16.2", "keras": "3.15.1"})
    assert not entry.selects(tf, {"tensorflow-cpu": "2.17.1"}) and not entry.selects(tf, {"keras": "3.15.1"})
    assert not entry.selects(tf, {"tensorflowx": "2.16.2"})  # another distribution, not a build of the framework


def test_gpu_axis_skips_cleanly_without_a_gpu(tmp_path, capsys):
    code = main(["run", "--cases", str(CASE), "--frameworks", "numpy", "--devices", "gpu", "--jobs", "1", "--out", str(tmp_path)])
    doc = load_results(tmp_path / "results.json")
    assert code == 0 and doc["records"] == []
    assert doc["environment"]["frameworks"]["numpy"]["skipped_devices"] == {"gpu": "no gpu visible to numpy"}
    assert "no gpu visible to numpy: skipped" in capsys.readouterr().err


def test_a_divergence_worse_than_its_bound_fails(tmp_path):
    """An entry bounds what it explains: a record 10x beyond its max_tol_ratio, or with a behaviour it does not list,
    stays a fail and says which divergence it left."""
    reg = tmp_path / "bounded.yaml"
    reg.write_text(yaml.safe_dump({"divergences": [{**_entry(case="s/*"), "explains": "value", "behaviours": ["finite"], "max_tol_ratio": 10}]}))
    entry = known.load(reg)[0]
    base = dict(framework="numpy", impl="scipy.special.softmax", case="s/c", status="fail", behaviour="finite")
    records = [record(**base, tol_ratio=8.0), record(**base, tol_ratio=100.0), record(**{**base, "behaviour": "all_nan"}, tol_ratio=None)]
    (inside, worse, other), tallies = known.apply(records, [entry], {})
    assert inside.status is Status.KNOWN
    assert worse.status is Status.FAIL and worse.beyond_known == entry.id and "100x its tolerance" in record_message(worse)
    assert other.status is Status.FAIL and "behaviour all_nan" in record_message(other)
    assert (tallies[entry.id].matched, tallies[entry.id].beyond, tallies[entry.id].exercised) == (1, 2, 3)
    assert [r.status for r in records] == ["fail"] * 3  # the registry makes new records; the ones it was given are unchanged


def test_rejudge_with_the_same_registry_changes_no_status(tmp_path):
    """`conformance rejudge` undoes the registry's decisions and applies it again: over the baseline, made with this
    registry, every record keeps its status and its entry."""
    from conformance.app.cli import main
    from conformance.run.results import read

    base = Path(__file__).resolve().parent.parent / "reports" / "baseline" / "results.json"
    assert main(["rejudge", str(base), "--out", str(tmp_path)]) == 0
    before = {(r["case"], r["op"], r["quantity"], r["dtype"], r["impl_id"], r["mode"], r["device"]): (r["status"], r.get("known_id"))
              for r in read(base)["records"]}
    after = read(tmp_path / "results.json")
    assert after["rejudged"]["registry"] == [str(bundled.registry_file().resolve())]
    assert {(r["case"], r["op"], r["quantity"], r["dtype"], r["impl_id"], r["mode"], r["device"]): (r["status"], r.get("known_id"))
            for r in after["records"]} == before


def test_rejudge_reads_a_run_made_from_another_copy_of_the_package(tmp_path):
    """A results file's records name the case files of the copy that ran them (another checkout, the wheel): a file
    the same as a bundled one is the bundled one, not a second suite of that name (which `rejudge --oracle` refused)."""
    import shutil

    from conformance.app.cli import main
    from conformance.run import results as results_io
    from conformance.run.results import read

    other = tmp_path / "elsewhere" / "conformance" / "corpus" / "data" / "cases"
    shutil.copytree(bundled.cases_dir(), other)
    assert main(["run", "--frameworks", "numpy", "--case", "published-values/*", "--jobs", "1", "--quiet", "--out", str(tmp_path / "run")]) == 0
    doc = read(tmp_path / "run" / "results.json")
    moved = [r.but(case_file=str(other / Path(r.case_file).name)).to_json() for r in doc["records"]]
    results_io.write({**doc, "records": moved}, tmp_path / "moved" / "results.json")
    assert main(["rejudge", "--oracle", str(tmp_path / "moved" / "results.json"), "--out", str(tmp_path / "again")]) == 0
    assert {r.status for r in read(tmp_path / "again" / "results.json")["records"]} == {r.status for r in doc["records"]}


def test_a_renamed_implementation_is_stale_but_a_glob_over_frameworks_is_not():
    """`torch/naive/softmaxx` names torch, which ran and offers no such id: renamed. `*/naive/*` speaks for whichever
    frameworks have naive formulas; a run of Keras backends alone (none has one) says nothing about it."""
    def entry(impl: str) -> known.Entry:
        return known.Entry(id=impl, match={"framework": ["*"], "impl": [impl]}, kind="design", reason="r", link="l")

    offered = {"torch": {"torch/naive/softmax"}, "keras-torch": {"keras-torch/keras/ops/softmax"}}
    stale = known.stale([entry("torch/naive/softmaxx"), entry("*/naive/*")], known.Tallies(), {}, set(), set(), offered)
    assert [e["id"] for e in stale] == ["torch/naive/softmaxx"]
    assert not known.stale([entry("*/naive/*")], known.Tallies(), {}, set(), set(), {"keras-torch": {"keras-torch/keras/ops/softmax"}})


def test_rejudge_with_the_oracle_judges_stored_outputs_again(tmp_path):
    """A record whose stored output the oracle now judges otherwise changes with --oracle, and only then: the oracle
    is asked again, not the record's own expected value."""
    from conformance.app.cli import main
    from conformance.run.results import read

    (tmp_path / "cases").mkdir()
    (tmp_path / "cases" / "c.yaml").write_text(
        "suite: again\ndescription: d\ncases:\n  - id: two\n    description: d\n    ops: [softmax]\n    dtypes: [float64]\n"
        "    quantities: [value]\n    logits: [[0.0, 1.0]]\n")
    assert main(["run", "--cases", str(tmp_path / "cases"), "--frameworks", "numpy", "--out", str(tmp_path / "run")]) == 0
    doc = load_results(tmp_path / "run" / "results.json")
    edited = next(r for r in doc["records"] if r["impl_id"] == "numpy/scipy/softmax")
    edited["output"] = [[0.5, 0.5]]  # an answer the oracle calls wrong, as if the oracle had said otherwise at the time
    (tmp_path / "edited.json").write_text(__import__("json").dumps(doc))
    assert main(["rejudge", str(tmp_path / "edited.json"), "--out", str(tmp_path / "kept")]) == 0  # judgement kept
    assert main(["rejudge", "--oracle", str(tmp_path / "edited.json"), "--out", str(tmp_path / "again")]) == 1
    again = next(r for r in read(tmp_path / "again" / "results.json")["records"] if r["impl_id"] == "numpy/scipy/softmax")
    assert again["status"] == "fail" and again["expected"][0][1] > 0.73
    # a run of the bundled corpus names the bundled files as its case files: read once, judged the same
    assert main(["run", "--case", "published-values/*", "--frameworks", "numpy", "--out", str(tmp_path / "bundled")]) == 0
    assert main(["rejudge", "--oracle", str(tmp_path / "bundled" / "results.json"), "--out", str(tmp_path / "bundled-again")]) == 0
    before, after = (read(tmp_path / d / "results.json")["records"] for d in ("bundled", "bundled-again"))
    assert [r["status"] for r in after] == [r["status"] for r in before]


def _explaining(explains, **match) -> known.Entry:
    return known.Entry(id="e", match={"framework": ["keras-jax"], **match}, kind="design", reason="r", link="l", explains=explains)


def test_an_entry_explains_one_kind_of_record_and_matches_no_other():
    finite = record(framework="keras-jax", impl="k", case="s/c", behaviour="finite", status="fail")
    silent = finite.but(invalid=True)  # a finite answer to an input that has none
    nan = finite.but(behaviour="all_nan")
    raised = finite.but(behaviour="error", status="error")
    accuracy = _explaining(("accuracy",))
    assert accuracy.selects(finite) and not accuracy.selects(silent) and not accuracy.selects(nan) and not accuracy.selects(raised)
    assert _explaining(("invalid-input",)).selects(silent) and not _explaining(("invalid-input",)).selects(finite)
    assert _explaining(("error",)).selects(raised) and not _explaining(("error",)).selects(nan)
    value = _explaining(("value",), case=["s/c"])
    assert value.selects(finite) and value.selects(nan) and not value.selects(silent) and not value.selects(raised)


def test_explains_is_required_and_checked(tmp_path):
    def load(extra: str):
        path = tmp_path / "k.yaml"
        path.write_text("divergences:\n  - id: e\n    match: {framework: numpy}\n    kind: design\n    reason: r\n    link: l\n" + extra)
        return known.load(path)

    for extra, message in (("", "field 'explains' is required"), ("    explains: speed\n", "must be one of accuracy"),
                           ("    explains: value\n", "must name its cases")):
        with pytest.raises(known.RegistryError, match=message):
            load(extra)
    assert load("    explains: [accuracy, error]\n")[0].explains == ("accuracy", "error")


def test_the_floatx_entry_explains_accuracy_only_on_the_baseline(tmp_path):
    """keras-losses-compute-in-floatx (Keras casts to float32) explains float64 answers that are float32-accurate, an
    invalid input's answered entries among them (answered_wrong: its out-of-range rows have no answer, its others
    float32's); a silent answer to an invalid input or a NaN on the same calls needs an entry that names it (or stays a
    fail)."""
    from conformance.run.api import rejudge
    from conformance.run.results import read

    base = Path(__file__).resolve().parent.parent / "reports" / "baseline" / "results.json"
    doc = rejudge(read(base))
    floatx = [r for r in doc["records"] if r.get("known_id") == "keras-losses-compute-in-floatx"]
    assert floatx and all(r["behaviour"] == "finite" or r.get("answered_wrong") for r in floatx)
    assert all(not r.get("invalid") or r.get("answered_wrong") for r in floatx)


def test_varies_is_a_flag(tmp_path):
    path = tmp_path / "k.yaml"
    path.write_text("divergences:\n  - id: e\n    match: {framework: numpy}\n    kind: design\n    reason: r\n    link: l\n"
                    "    explains: invalid-input\n    varies: sometimes\n")
    with pytest.raises(known.RegistryError, match="'varies' must be true or false"):
        known.load(path)
    path.write_text(path.read_text().replace("sometimes", "true"))
    assert known.load(path)[0].varies is True
