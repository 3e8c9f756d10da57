"""Benchmark documents: the pytest-benchmark JSON that `conformance bench` writes (benchmarks.json), read and checked,
grouped by benchmark, and put together from several files. The speed report and the speed gate read them here."""

from __future__ import annotations

from pathlib import Path

from ..run.results import ResultsError, load_json

BENCH_FILE = "benchmarks.json"


def read(path: Path) -> dict:
    """One pytest-benchmark JSON file; ResultsError (exit 2) for anything else."""
    doc = load_json(path, "a pytest-benchmark JSON file", nan_allowed=True)
    if not isinstance(doc, dict) or not isinstance(doc.get("benchmarks", []), list):
        raise ResultsError(f"{path}: not a pytest-benchmark JSON file (no list of benchmarks)")
    for i, b in enumerate(doc.get("benchmarks", [])):
        stats = b.get("stats") if isinstance(b, dict) else None
        if not isinstance(b, dict) or not isinstance(b.get("fullname"), str) or not isinstance(stats, dict):
            raise ResultsError(f"{path}: benchmark {i} has no fullname and stats")
        for k in ("min", "median", "iqr"):
            v = stats.get(k)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not (v > 0 or (k == "iqr" and v == 0)):
                raise ResultsError(f"{path}: benchmark {b['fullname'][:80]!r}: stats.{k} must be a positive number")
        if not isinstance(b.get("extra_info", {}), dict):
            raise ResultsError(f"{path}: benchmark {b['fullname'][:80]!r}: extra_info must be an object")
    if not isinstance(doc.get("machine_info", {}), dict):
        raise ResultsError(f"{path}: machine_info must be an object")
    return doc


def machine_fingerprint(doc: dict) -> str | None:
    """CPU model and core count: times from two different machines say nothing about a regression."""
    info = doc.get("machine_info") or {}
    cpu = info.get("cpu") or {}
    if not cpu:
        return None
    return f"{cpu.get('brand_raw', '?')}, {cpu.get('count', '?')} cores, {info.get('machine', '?')}"


def by_name(docs: list[dict]) -> dict[str, list[dict]]:
    """Every benchmark of these pytest-benchmark documents, grouped by its full name, in document order: what the
    three ways of putting documents together (bench.merge, bench.combine, load) choose from."""
    grouped: dict[str, list[dict]] = {}
    for doc in docs:
        for b in doc.get("benchmarks", []):
            grouped.setdefault(b["fullname"], []).append(b)
    return grouped


def load(bench_paths: list[Path]) -> dict:
    """One benchmark document from the pytest-benchmark JSON files that exist: every benchmark (a later file
    wins for the same name), every process fingerprint ("runs") and the first file's machine_info."""
    found = [(bench, read(bench)) for bench in bench_paths if Path(bench).exists()]
    runs = [run for bench, doc in found
            for run in doc.get("runs") or ([{"source": str(bench), **doc["machine_info"]}] if doc.get("machine_info") else [])]
    machine = next((doc["machine_info"] for _, doc in found if doc.get("machine_info")), {})
    latest = [entries[-1] for entries in by_name([doc for _, doc in found]).values()]
    return {"machine_info": machine, "runs": runs, "benchmarks": latest,
            "version": "softmax-conformance (merged pytest-benchmark JSON)"}
