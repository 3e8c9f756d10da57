"""`conformance bench` once its arguments are parsed: the benchmarks run (one framework per fresh process), their
document and the speed section written, and what happened said; the GPU job runs its benchmarks through here too."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from ..report import pages
from ..report import speed as speed_report
from ..run import results as results_io
from ..run.pool import interrupt_on_sigterm
from ..speed import bench


def combine_and_say(paths: list[Path], out: Path) -> int:
    """One speed baseline from several runs' benchmarks.json (bench.combine), written into `out`."""
    doc = bench.combine(paths)
    written = speed_report.write(doc, out)
    print(f"bench: {len(doc['benchmarks'])} benchmarks from {len(paths)} runs combined (each keeps its fastest run "
          "and every run's min, the between-run noise the gate reads)")
    print("wrote " + ", ".join(str(p) for p in written))
    return 0


def bench_and_say(frameworks: tuple[str, ...], absent: dict[str, str], out: Path, options: bench.BenchOptions) -> int:
    """Benchmark `frameworks` into `out`; the exit code (3 interrupted, 1 a framework's benchmarks failed, else 0)."""
    for name, why in absent.items():
        print(f"bench: {name}: absent, skipped ({why})", file=sys.stderr)
    started = time.monotonic()
    restore = interrupt_on_sigterm()
    try:
        run = bench.run(frameworks, out, options, log=lambda line: print(line, file=sys.stderr, flush=True))
    finally:
        restore()
    for note in sorted(run.notes):
        print(f"bench: {note}")
    if run.failed and not run.files:
        print(f"bench: no benchmark JSON was written ({'; '.join(f'{k}: {v}' for k, v in run.failed.items())})")
        return 1
    doc = bench.document(run, frameworks)  # an interrupted run's keeps what finished, and says it is not the whole run
    written = speed_report.write(doc, out)
    results_path = out / "results.json"
    if results_path.exists():  # a conformance run in the same folder: its summary gains the speed section
        written.append(pages.write(out, results_io.read(results_path)))
    speed = [b for b in doc["benchmarks"] if b.get("extra_info", {}).get("kind") == "speed"]
    per_fw = {n: sum(b["extra_info"]["framework"] == n for b in speed) for n in run.seconds}
    print(f"bench: {len(doc['benchmarks'])} benchmarks in {time.monotonic() - started:.0f}s, {options.repeat} process(es) per framework ("
          + ", ".join(f"{n} {c} in {run.seconds[n]:.0f}s" for n, c in per_fw.items()) + ")")
    if not doc["benchmarks"]:
        print("bench: no benchmark ran (every one was deselected or skipped)")
    for line in speed_report.memory_lines(doc["benchmarks"]):
        print(f"bench: {line}")
    for name, why in run.failed.items():
        print(f"bench: {name}: FAILED ({why})")
    print("wrote " + ", ".join(str(p) for p in written))
    if run.interrupted:
        print(f"bench: INCOMPLETE: stopped during {run.interrupted}" + (f"; never started: {', '.join(doc['incomplete']['not_started'])}"
                                                                         if doc["incomplete"]["not_started"] else ""))
        return 3
    return 1 if run.failed else 0
