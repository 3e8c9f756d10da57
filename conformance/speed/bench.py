"""`conformance bench`: the pytest-benchmark suite (conformance/speed/suite), one framework per process.

Frameworks run one after another, never side by side, each in a fresh pytest process pinned to the same
cores with the same thread count (isolation: no framework's thread pools, allocator or JIT cache sees
another's, and none competes with another for the cores). Each process writes pytest-benchmark JSON; the
files are merged into `benchmarks.json` in the output folder (beside results.json, where the gate and the
report look for it), with `speed.md` and `speed_gbps.png`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..adapters import declared
from ..model.names import DEVICES, MODES
from ..run import results as results_io
from . import documents
from .documents import BENCH_FILE

SUITE = Path(__file__).resolve().parent / "suite"
# pytest-benchmark settings per profile: rounds are bounded by time, never fewer than min_rounds.
PROFILES = {
    "quick": {"max_time": 0.15, "min_rounds": 5, "warmup_seconds": 0.05},
    "full": {"max_time": 1.0, "min_rounds": 5, "warmup_seconds": 0.25},
}


@dataclass(frozen=True)
class BenchOptions:
    """What `conformance bench` measures and how (the command line parses its arguments into one)."""
    profile: str = "full"  # PROFILES
    threads: int = 1  # threads and pinned cores for every framework
    repeat: int = 1  # fresh processes per framework, interleaved
    max_time: float | None = None  # pytest-benchmark seconds per benchmark (default: the profile's)
    modes: tuple[str, ...] = MODES
    devices: tuple[str, ...] = DEVICES
    dtypes: tuple[str, ...] | None = None  # None: the profile's
    shapes: tuple[str, ...] | None = None  # "NxC"; None: the profile's
    select: str | None = None  # a pytest -k expression over benchmark names
    ids_file: Path | None = None  # exactly the benchmarks named in this file (the gate's confirmation)


@dataclass
class BenchRun:
    files: dict[str, Path] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    notes: set[str] = field(default_factory=set)  # e.g. a requested GPU that the framework cannot see
    seconds: dict[str, float] = field(default_factory=dict)
    interrupted: str = ""  # the framework whose process was stopped (Ctrl-C, SIGTERM); later ones never started


def _command(framework: str, profile: str, json_path: Path, args: BenchOptions) -> list[str]:
    p = PROFILES[profile]
    # -p no:xdist: one benchmark at a time in this process, whatever plugins the environment has (timing in parallel is noise)
    cmd = [sys.executable, "-m", "pytest", str(SUITE / "bench_speed.py"), "-c", str(SUITE / "pytest.ini"), "--rootdir", str(SUITE),
           "-p", "no:xdist", "-q", "--benchmark-json", str(json_path), "--benchmark-disable-gc", "--benchmark-min-rounds", str(p["min_rounds"]),
           "--benchmark-max-time", str(args.max_time or p["max_time"]), "--benchmark-warmup", "on", "--benchmark-warmup-iterations", "10",
           "--benchmark-columns", "min,median,iqr,rounds,iterations", "--benchmark-sort", "name",
           "--bench-framework", framework, "--bench-profile", profile, "--bench-threads", str(args.threads),
           "--bench-warmup-seconds", str(p["warmup_seconds"]), "--bench-modes", ",".join(args.modes), "--bench-devices", ",".join(args.devices)]
    if args.dtypes:
        cmd += ["--bench-dtypes", ",".join(args.dtypes)]
    if args.shapes:
        cmd += ["--bench-shapes", ",".join(args.shapes)]
    if args.select:
        cmd += ["-k", args.select]
    if args.ids_file:
        cmd += ["--bench-ids", str(args.ids_file)]
    return cmd


def _environment(threads: int, framework: str) -> dict:
    """The same thread count for every framework's own pools (the process is also pinned to `threads` cores): the
    OpenMP/BLAS variables, and those the adapter names (THREAD_ENV); the adapter's QUIET_ENV keeps its logs down."""
    # not a worker of a pytest-xdist session that started this one (the tests): pytest-benchmark would disable itself
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_XDIST", "PYTEST_ADDOPTS"))}
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", *declared(framework, "THREAD_ENV")):
        env[var] = str(threads)
    for var, value in declared(framework, "QUIET_ENV").items():
        env.setdefault(var, value)
    return env


def run(frameworks: tuple[str, ...], out: Path, args: BenchOptions, log: Callable[[str], None] = print) -> BenchRun:
    """Each framework in `args.repeat` fresh processes, interleaved (fw1, fw2, ..., fw1, fw2, ...), so that a slow
    spell of a shared machine or an unlucky process state (allocator, thread placement) hits one process of a
    benchmark, not all of them."""
    out.mkdir(parents=True, exist_ok=True)
    raw_dir = out / "bench"
    raw_dir.mkdir(exist_ok=True)
    for stale in raw_dir.glob("*.json"):
        stale.unlink()  # never merge a previous run's file
    result = BenchRun()
    for repeat in range(args.repeat):
        for name in frameworks:
            if name in result.failed:
                continue
            tag = name if args.repeat == 1 else f"{name}-{repeat + 1}"
            json_path = raw_dir / f"{tag}.json"
            log(f"bench: {tag} ({args.profile} profile, {args.threads} threads)")
            started = time.monotonic()
            code, output = _pytest(_command(name, args.profile, json_path, args), _environment(args.threads, name), result, name)
            result.seconds[name] = result.seconds.get(name, 0.0) + time.monotonic() - started
            (raw_dir / f"{tag}.log").write_text(output, encoding="utf-8")
            result.notes |= {line.split("conformance bench: ", 1)[1] for line in output.splitlines() if "not visible" in line}
            tail = output.strip().splitlines()[-1:] or ["(no output)"]
            log(f"bench: {tag}: {tail[0]} [{time.monotonic() - started:.0f}s, log {raw_dir / (tag + '.log')}]")
            if json_path.exists() and json_path.stat().st_size:
                result.files[tag] = json_path
            if result.interrupted:
                return result
            if code not in (0, 5):  # 5: nothing collected (every benchmark deselected)
                result.failed[name] = f"pytest exit {code}; log {raw_dir / (tag + '.log')}"
    return result


def _pytest(cmd: list[str], env: dict, result: BenchRun, name: str) -> tuple[int, str]:
    """One benchmark process. Stopped (Ctrl-C, SIGTERM), it gets SIGINT, on which pytest ends the session and
    pytest-benchmark still writes the JSON of the benchmarks that finished."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        output, _ = proc.communicate()
    except KeyboardInterrupt:
        result.interrupted = name
        proc.send_signal(signal.SIGINT)
        try:
            output, _ = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate()
    return proc.returncode, output or ""


def merge(files: list[Path]) -> dict:
    """One pytest-benchmark document from per-process files. A benchmark measured in several processes keeps
    the stats of its fastest process (by min time) and records every process's min in
    extra_info.process_mins: the spread between processes is the noise the gate needs."""
    docs = [documents.read(path) for path in files]
    runs = documents.by_name(docs)
    machines = [{"source": str(path), **doc.get("machine_info", {})} for path, doc in zip(files, docs)]
    benchmarks = []
    for entries in runs.values():
        best = min(entries, key=lambda b: b["stats"]["min"])
        # The per-round samples (stats.data) stay in the per-process files under bench/; the merged file keeps the
        # summary statistics (pytest-benchmark would otherwise make it about 10 MB for the quick profile).
        best = {**best, "stats": {k: v for k, v in best["stats"].items() if k != "data"},
                "extra_info": {**best["extra_info"], "process_mins": sorted(b["stats"]["min"] for b in entries)}}
        benchmarks.append(best)
    first = machines[0] if machines else {}
    return {"machine_info": {k: v for k, v in first.items() if k not in ("conformance", "source")}, "runs": machines,
            "benchmarks": benchmarks, "version": "softmax-conformance bench (pytest-benchmark JSON)"}


def document(result: BenchRun, frameworks: tuple[str, ...]) -> dict:
    """The merged benchmarks document of a run; an interrupted run's says what it lacks (complete: false, and the
    framework stopped and those never started), so it never poses as the whole run."""
    doc = merge(list(result.files.values()))
    if result.interrupted:
        doc.update(complete=False, incomplete={"interrupted": result.interrupted, "not_started": [n for n in frameworks if n not in result.seconds]})
    return doc


def combine(paths: list[Path]) -> dict:
    """One speed baseline from several `conformance bench` runs made at different times (each a merged
    benchmarks.json). Each benchmark keeps the stats of its fastest run, every process's min
    (extra_info.process_mins) and each run's min (extra_info.run_mins): the spread between runs is the
    noise of this machine from one hour to the next, which the spread between the processes of one run
    does not show (a slow spell slows every process of a run at once: reports/bench-reruns/README.md)."""
    docs = [documents.read(p) for p in paths]
    fingerprints = {documents.machine_fingerprint(d) for d in docs}
    if len(fingerprints) > 1:
        raise results_io.ResultsError(f"runs from different machines cannot make one baseline: {sorted(map(str, fingerprints))}")
    entries = documents.by_name(docs)
    benchmarks = []
    for runs in entries.values():
        best = min(runs, key=lambda b: b["stats"]["min"])
        process_mins = sorted(m for b in runs for m in (b["extra_info"].get("process_mins") or [b["stats"]["min"]]))
        benchmarks.append({**best, "extra_info": {**best["extra_info"], "process_mins": process_mins,
                                                  "run_mins": sorted(b["stats"]["min"] for b in runs)}})
    return {"machine_info": docs[0].get("machine_info", {}), "runs": [r for d in docs for r in d.get("runs", [])],
            "combined_from": [str(p) for p in paths], "benchmarks": benchmarks,
            "version": "softmax-conformance bench (pytest-benchmark JSON, several runs combined)"}


def remeasure(tripped: list[dict], like: dict, out: Path, log: Callable[[str], None] = print) -> dict:
    """Measure exactly the `tripped` benchmarks again, in fresh processes, with the profile, threads and number of
    processes per framework that produced `like` (a merged benchmarks.json): the gate's confirmation of a speed
    regression. Written under `out` (bench/ logs and benchmarks.json); returns the merged document."""
    conf = (like.get("runs") or [{}])[0].get("conformance", {})
    extras = [b["extra_info"] for b in tripped]
    out.mkdir(parents=True, exist_ok=True)
    ids_file = out / "ids.txt"
    ids_file.write_text("\n".join(b["name"] for b in tripped) + "\n", encoding="utf-8")
    frameworks = tuple(dict.fromkeys(e["framework"] for e in extras))
    repeat = max(len(b["extra_info"].get("process_mins") or [1]) for b in tripped) if tripped else 1
    options = BenchOptions(
        profile=conf.get("profile", "quick"), threads=conf.get("threads", os.cpu_count() or 1), max_time=conf.get("max_time"),
        repeat=min(repeat, 10), ids_file=ids_file,
        dtypes=tuple(sorted({e["dtype"] for e in extras})), modes=tuple(sorted({e["mode"] for e in extras})),
        devices=tuple(sorted({e["device"] for e in extras})), shapes=tuple(sorted({"x".join(map(str, e["shape"])) for e in extras})))
    result = run(frameworks, out, options, log=log)
    doc = merge(list(result.files.values()))
    results_io.write(doc, out / BENCH_FILE)
    return doc
