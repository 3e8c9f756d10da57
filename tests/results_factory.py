"""Results files made by hand for the gate's and the report's tests: one record with every required field, overridable."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from conformance.model.record import Record
from conformance.run import results as results_io
from conformance.speed.documents import BENCH_FILE


def record(**over) -> Record:
    """A record as the runner builds it (what results.read gives back)."""
    r = {"case": "s/c", "op": "softmax", "quantity": "value", "dtype": "float32", "framework": "torch", "impl": "torch.softmax",
         "mode": "eager", "device": "cpu", "status": "pass", "behaviour": "finite", "max_abs_err": 1e-8, "max_rel_err": 1e-7,
         "max_ulp": 1.0, "size": 4, "nan_count": 0, "inf_count": 0, "error": None, "known": None, "logit_scale": 1.0, "naive": False}
    r.update(over)
    return Record.from_json(r)


def write(tmp_path: Path, name: str, records, stale=(), bench=None) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    doc = results_io.document(records, {}, {"stale_known": list(stale)})
    results_io.write(doc, folder / "results.json")
    if bench is not None:
        (folder / BENCH_FILE).write_text(json.dumps({"benchmarks": bench}))
    return folder / "results.json"


def bench(name, minimum, noise=0.02, process_mins=None):
    b = {"fullname": name, "stats": {"min": minimum, "median": minimum * (1 + noise), "iqr": minimum * noise}}
    if process_mins is not None:
        b["extra_info"] = {"process_mins": process_mins}
    return b


def load(path: Path) -> dict:
    """A results file read as a user's script reads it: gzip-decompressed where it is compressed (the default), then
    `json.loads`."""
    data = Path(path).read_bytes()
    return json.loads(gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data)


def outcomes(path: Path) -> list[tuple]:
    """What two runs of the same selection must agree on, record by record (not the times or the environment)."""
    return sorted((r["case"], r["op"], r["quantity"], r["dtype"], r["impl"], r["mode"], r["status"], r["max_abs_err"], r["max_ulp"])
                  for r in load(path)["records"])
