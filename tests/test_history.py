"""The release history: real runs of the bundled corpus on consecutive releases of Keras (on JAX), optax and JAX
(tests/data/history/, made with `conformance history`, docs/history.md). For every pair, `diff` lists each
documented change, the gate fails in the direction that loses the better behaviour and passes the other, and the
pairs where nothing should change pass both ways with no record moved. Also the command's own behaviour: bad input
is one line and exit 2, a release's kept results resume the history.
"""

from __future__ import annotations

import fnmatch
import functools
import gzip
import shutil
from pathlib import Path

import pytest
import yaml

from conformance.app import history
from conformance.app.cli import main
from conformance.run import results as results_io

DATA = Path(__file__).resolve().parent / "data" / "history"
PAIRS = yaml.safe_load((DATA / "pairs.yaml").read_text(encoding="utf-8"))["pairs"]


@functools.cache
def _doc(label: str) -> dict:
    return results_io.read(DATA / f"{label}.json.gz")


def _id(pair: dict) -> str:
    return f"{pair['before']}->{pair['after']}"


def test_the_history_holds_eight_real_pairs_six_with_documented_changes():
    documented = [p for p in PAIRS if p["changes"]]
    assert len(PAIRS) >= 8 and len(documented) >= 6 and len(PAIRS) - len(documented) >= 2
    for p in PAIRS:
        assert p["link"].startswith("https://github.com/"), p
        for label in (p["before"], p["after"]):
            doc = _doc(label)
            assert doc["complete"] and doc["records"], label


@pytest.mark.parametrize("pair", PAIRS, ids=_id)
def test_diff_lists_every_documented_change_and_nothing_on_a_benign_pair(pair):
    compared = history.compare(_doc(pair["before"]), _doc(pair["after"]), (pair["before"], pair["after"]))
    if not pair["changes"]:
        assert compared.moves == {} and compared.answers == [], compared.answers[:5]
        return
    for change in pair["changes"]:
        hits = [r for r in compared.answers if fnmatch.fnmatchcase(r, change["records"])]
        assert hits and len(hits) == change["count"], (change, hits[:5])
    listed = sum(c["count"] for c in pair["changes"])
    assert len(compared.answers) == listed, "a record changed that the documented changes do not name: " + \
        "; ".join(r for r in compared.answers if not any(fnmatch.fnmatchcase(r, c["records"]) for c in pair["changes"]))[:600]


@pytest.mark.parametrize("pair", PAIRS, ids=_id)
def test_the_gate_fails_the_direction_that_loses_the_better_behaviour(pair, tmp_path, capsys):
    paths = {}
    for label in (pair["before"], pair["after"]):
        paths[label] = tmp_path / label / "results.json"
        results_io.write(_doc(label), paths[label])
    for direction, (base, cur) in (("upgrade", (pair["before"], pair["after"])), ("downgrade", (pair["after"], pair["before"]))):
        code = main(["gate", "--baseline", str(paths[base]), "--current", str(paths[cur])])
        out = capsys.readouterr().out
        assert code == (1 if pair[direction] == "fail" else 0), f"{direction}: {out[-1500:]}"
        if code:
            assert "gate: FAIL" in out


def test_history_resumes_from_kept_results_and_writes_its_table(tmp_path, capsys):
    """Kept results are compared without installing or running anything (no pip, no process): an interrupted
    history loses nothing."""
    pair = next(p for p in PAIRS if p["changes"] and p["downgrade"] == "fail")
    releases = [pair["before"], pair["after"]]
    for label in releases:
        (tmp_path / "cache" / label).mkdir(parents=True)
        (tmp_path / "cache" / label / ".installed").write_text("kept\n")
        (tmp_path / "out" / label).mkdir(parents=True)
        (tmp_path / "out" / label / "results.json").write_bytes(gzip.decompress((DATA / f"{label}.json.gz").read_bytes()))
    args = ["history", "--framework", pair["framework"], "--out", str(tmp_path / "out"), "--cache", str(tmp_path / "cache")]
    for label in releases:
        args += ["--release", " ".join(f"{n}=={v}" for n, v in (part.rsplit("-", 1) for part in label.split("_")))]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert f"{pair['before']} -> {pair['after']}" in out and "downgrade fails" in out
    table = (tmp_path / "out" / "history.md").read_text()
    assert f"| {pair['before']} | {pair['after']} |" in table


@pytest.mark.parametrize("args, message", [
    (["--framework", "nosuch", "--release", "a==1", "--release", "a==2"], "unknown framework 'nosuch'"),
    (["--framework", "numpy", "--release", "numpy>=2", "--release", "numpy==2.1"], "is not an exact pin"),
    (["--framework", "numpy", "--release", "numpy==2.1"], "at least two releases"),
    (["--framework", "numpy", "--release", "numpy==2.1", "--release", "numpy==2.1"], "named twice"),
])
def test_bad_input_is_one_line_and_exit_2(args, message, capsys, tmp_path):
    assert main(["history", "--out", str(tmp_path), "--cache", str(tmp_path / "c"), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_a_run_that_imported_another_release_is_refused():
    release = history.parse_release("keras==3.10.0")
    doc = {"environment": {"frameworks": {"keras-jax": {"packages": {"keras": "3.15.1", "jax": "0.10.2"}}}}}
    assert "keras 3.15.1 (asked 3.10.0)" in history.check_imported(release, doc, "keras-jax")
    doc["environment"]["frameworks"]["keras-jax"]["packages"]["keras"] = "3.10.0"
    assert history.check_imported(release, doc, "keras-jax") is None


def test_a_gzipped_results_file_reads_like_a_plain_one_and_a_bomb_is_refused(tmp_path, monkeypatch):
    label = PAIRS[0]["before"]
    plain = tmp_path / "plain.json"
    plain.write_bytes(gzip.decompress((DATA / f"{label}.json.gz").read_bytes()))
    assert results_io.read(plain)["records"] == _doc(label)["records"]
    monkeypatch.setattr(results_io, "MAX_JSON_MB", 0.5)
    with pytest.raises(results_io.ResultsError, match="unpacks to over"):
        results_io.read(DATA / f"{label}.json.gz")
    broken = tmp_path / "broken.json.gz"
    shutil.copy(DATA / f"{label}.json.gz", broken)
    broken.write_bytes(broken.read_bytes()[:2000])
    with pytest.raises(results_io.ResultsError, match="not a readable gzip file"):
        results_io.read(broken)


def test_a_release_whose_run_writes_nothing_leaves_no_folder(tmp_path, capsys):
    """A release that cannot be imported (its install broken) ends its run with exit 2 before anything is written:
    the history says so, and leaves no empty release folder to read as a release that ran."""
    pytest.importorskip("optax")
    for label, body in (("optax-0.2.0", 'raise ImportError("broken on purpose")\n'), ("optax-0.2.1", "")):
        (tmp_path / "cache" / label / "optax").mkdir(parents=True)
        (tmp_path / "cache" / label / "optax" / "__init__.py").write_text(body)
        (tmp_path / "cache" / label / ".installed").write_text("kept\n")
    args = ["history", "--framework", "jax", "--release", "optax==0.2.0", "--release", "optax==0.2.1",
            "--out", str(tmp_path / "out"), "--cache", str(tmp_path / "cache")]
    assert main(args) == 2
    assert "ended with exit 2 and wrote nothing" in capsys.readouterr().err
    assert not (tmp_path / "out" / "optax-0.2.0").exists()
