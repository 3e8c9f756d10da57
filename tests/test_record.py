"""The record and its status as objects: results.read gives `Record`s with a `Status`, written back field for field;
a record is never changed in place; the status questions the code asks have one answer each."""

from __future__ import annotations

import json

import pytest
from results_factory import load as load_results
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
    assert load_results(tmp_path / "again.json")["records"] == load_results(path)["records"]


def test_an_unknown_status_is_refused(tmp_path):
    path = write(tmp_path, "run", [record()])
    doc = load_results(path)
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


def test_a_results_file_is_compressed_json_that_every_reader_and_json_load_read(tmp_path, monkeypatch):
    """A results file is gzip-compressed JSON by default (a record's JSON text is about 1 kB; #45 asks for at most
    400 bytes a record): `gzip` + `json.load` give back the document, results.read gives the same records, and
    CONFORMANCE_PLAIN_JSON=1 writes JSON text that reads the same."""
    import gzip

    records = [record(case=f"s/c{i}", output=[0.1 * i, 0.2, 0.7], expected=[0.1 * i, 0.2, 0.7]) for i in range(200)]
    compressed = write(tmp_path, "gz", records)
    raw = compressed.read_bytes()
    assert raw[:2] == b"\x1f\x8b" and len(raw) / len(records) <= 400
    assert json.load(gzip.open(compressed))["records"][5]["case"] == "s/c5"
    monkeypatch.setenv(results_io.PLAIN_ENV, "1")
    plain = write(tmp_path, "plain", records)
    assert json.loads(plain.read_text())["records"] == json.load(gzip.open(compressed))["records"]
    assert results_io.read(plain)["records"] == results_io.read(compressed)["records"] == records
    assert len(raw) < plain.stat().st_size / 5


def test_a_compressed_file_is_unpacked_within_the_limit_and_in_pieces(tmp_path, monkeypatch):
    """A gzip bomb is refused once it unpacks past the limit, and a small compressed file costs little memory: the
    reader never sets the whole limit aside (read(limit) once allocated 512 MB for a file of a few kilobytes)."""
    import gzip
    import tracemalloc

    bomb = tmp_path / "bomb.json"
    bomb.write_bytes(gzip.compress(b" " * (3 * 1024 * 1024)))
    monkeypatch.setattr(results_io, "MAX_JSON_MB", 2)
    with pytest.raises(results_io.ResultsError, match="unpacks to over 2 MB"):
        results_io.read(bomb)
    monkeypatch.undo()
    small = write(tmp_path, "small", [record()])
    tracemalloc.start()
    try:
        results_io.read(small)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024 * 1024, peak
