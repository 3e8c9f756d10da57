"""The record and its status as objects: results.read gives `Record`s with a `Status`, written back field for field;
a record is never changed in place; the status questions the code asks have one answer each."""

from __future__ import annotations

import json

import pytest
from results_factory import record, write

from conformance.model.record import Judgement, Record, judged, unjudged
from conformance.model.status import STATUSES, Status
from conformance.run import results as results_io


def test_the_one_order_is_the_contracts():
    assert STATUSES == ("pass", "known", "fail", "error", "unsupported", "skip")


def test_what_each_status_answers():
    assert [s for s in Status if s.unexplained] == [Status.FAIL, Status.ERROR]
    assert [s for s in Status if not s.ran] == [Status.UNSUPPORTED, Status.SKIP]
    # leaving pass is worse whatever the new status; becoming unexplained is worse from anything else
    assert all(s.worse_than(Status.PASS) for s in Status if s is not Status.PASS)
    assert Status.FAIL.worse_than(Status.KNOWN) and Status.ERROR.worse_than(Status.UNSUPPORTED)
    assert not Status.KNOWN.worse_than(Status.FAIL) and not Status.FAIL.worse_than(Status.ERROR) and not Status.PASS.worse_than(Status.FAIL)
    assert sorted(Status, key=lambda s: s.severity)[:3] == [Status.FAIL, Status.ERROR, Status.KNOWN]


def test_results_read_gives_records_and_writes_them_back_field_for_field(tmp_path):
    path = write(tmp_path, "run", [record(status="known", known="https://x", known_id="e", known_status="fail"), record(case="s/d")])
    doc = results_io.read(path)
    assert all(isinstance(r, Record) for r in doc["records"]) and doc["records"][0].status is Status.KNOWN
    results_io.write(doc, tmp_path / "again.json")
    assert json.loads((tmp_path / "again.json").read_text())["records"] == json.loads(path.read_text())["records"]


def test_an_unknown_status_is_refused(tmp_path):
    path = write(tmp_path, "run", [record()])
    doc = json.loads(path.read_text())
    doc["records"][0]["status"] = "passed"
    path.write_text(json.dumps(doc))
    with pytest.raises(results_io.ResultsError, match="status 'passed' is not one of"):
        results_io.read(path)
    with pytest.raises(ValueError):
        record(status="passed")


def test_a_record_is_not_changed_in_place():
    r = record(status="fail")
    with pytest.raises(AttributeError, match="not changed in place"):
        r.status = Status.PASS
    with pytest.raises(TypeError):
        r["status"] = "pass"  # the read-only view by name has no item assignment
    explained = judged(r, Judgement("entry", "https://link"))
    assert (r.status, explained.status, explained.known_status, explained.known_id) == (Status.FAIL, Status.KNOWN, "fail", "entry")
    assert unjudged(explained) == r
