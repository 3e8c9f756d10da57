"""`conformance gpu`: the one prepared command for a machine with a GPU.

It runs, each step in a fresh process (app/fresh.py) with its own share of a time budget (8 minutes by default, sized for one
H100 with about 15 minutes lent in all):
  1. the corpus in eager mode on the CPU and the GPU, for every framework present (the CPU records are the reference
     the report compares the GPU against: GPU-vs-CPU disagreements are listed like eager-vs-compiled ones);
  2. the corpus compiled on the GPU for the frameworks whose adapter declares QUICK_COMPILE (a compiler that builds a
     program in milliseconds; one that takes seconds per graph would spend the budget compiling);
  3. the GPU benchmarks (float32 and bfloat16, 1024x1000 and an LLM vocabulary 8192x128256, GB/s against a copy
     roof measured on the same GPU in the same process);
  4. the report (index.html, report.md, merged.json) over all of it,
and writes everything into one folder (default reports/gpu/), with gpu.json naming the GPU, the driver, the steps, their
exit codes and seconds. A step that runs out of its share is stopped like Ctrl-C, so its results file is written with
what finished, marked incomplete; a stop of the whole command (SIGTERM) does the same for the step it is in.

`--dry-run` runs the same steps on the CPU with one small suite and tiny benchmarks, saying that the GPU parts are
skipped: tests/test_gpu_paths.py runs it, so the command is known to work before a GPU is lent.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..adapters import declared, missing_packages, registered
from ..model.names import DTYPES
from ..report import html as html_report
from ..run.folder import RunRequest, default_compile_cache
from ..run.pool import interrupt_on_sigterm
from ..run.results import ResultsError
from ..run.runner import Selection
from ..speed.bench import BenchOptions
from ..speed.documents import BENCH_FILE
from . import fresh
from .bench_command import bench_and_say
from .run_command import run_as_command


@dataclass
class Step:
    name: str
    request: RunRequest | BenchRequest
    share: float  # of the whole budget
    result: dict = field(default_factory=dict)

    def command_line(self) -> list[str]:
        """The `conformance` command that does the same, for people (gpu.json, the log)."""
        r = self.request
        if isinstance(r, BenchRequest):
            o = r.options
            return ["bench", "--quick", "--frameworks", ",".join(r.frameworks), "--devices", ",".join(o.devices), "--modes", ",".join(o.modes),
                    "--shapes", ",".join(o.shapes or ()), "--dtypes", ",".join(o.dtypes or ()), "--max-time", f"{o.max_time:g}", "--out", str(r.out)]
        s = r.selection
        return ["run", "--frameworks", ",".join(s.frameworks), "--devices", ",".join(s.devices), "--modes", ",".join(s.modes),
                *[x for case in s.cases for x in ("--case", case)], "--out", str(r.out)]


@dataclass(frozen=True)
class BenchRequest:
    frameworks: tuple[str, ...]
    out: Path
    options: BenchOptions


def gpu_description() -> dict:
    """The GPU as nvidia-smi names it (name, driver, memory); empty where there is none."""
    if shutil.which("nvidia-smi") is None:
        return {}
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return {}
    gpus = [dict(zip(("name", "driver", "memory"), (p.strip() for p in line.split(",")))) for line in out.splitlines() if line.strip()]
    return {"gpus": gpus} if gpus else {}


def present(frameworks: tuple[str, ...] | None) -> list[str]:
    """The frameworks installed here (found without importing them), optionally narrowed."""
    names = [n for n in registered() if not missing_packages(n)]
    return [n for n in names if frameworks is None or n in frameworks]


def steps(out: Path, frameworks: list[str], dry_run: bool) -> list[Step]:
    devices = ("cpu",) if dry_run else ("cpu", "gpu")
    gpu = ("cpu",) if dry_run else ("gpu",)
    narrow = ("published-values/*",) if dry_run else ()
    cache, jobs = str(default_compile_cache()), max(2, os.cpu_count() or 1)

    def corpus(names: list[str], on: tuple[str, ...], mode: str, folder: str) -> RunRequest:
        sel = Selection(tuple(names), DTYPES, on, (mode,), cache, cases=narrow, named=True, devices_named=True)
        return RunRequest(sel, out / folder, jobs=jobs)

    gpu_frameworks = [n for n in frameworks if declared(n, "GPU")]
    plan = [Step("corpus eager, CPU and GPU", corpus(frameworks, devices, "eager", "eager"), 0.45)]
    quick = [n for n in gpu_frameworks if declared(n, "QUICK_COMPILE")]  # compiling the corpus fits the budget
    if quick:
        plan.append(Step("corpus compiled, GPU", corpus(quick, gpu, "compiled", "compiled"), 0.2))
    if gpu_frameworks:
        shapes, dtypes, max_time = (("32x10",), ("float32",), 0.01) if dry_run else (("1024x1000", "8192x128256"), ("float32", "bfloat16"), 0.1)
        # the fused implementations (the quick profile) at the GPU's sizes: the naive ones would take the budget
        options = BenchOptions("quick", os.cpu_count() or 1, 1, max_time, ("eager",), gpu, dtypes, shapes)
        plan.append(Step("benchmarks, GPU", BenchRequest(tuple(gpu_frameworks), out / "bench", options), 0.3))
    return plan


def _step_body(request: RunRequest | BenchRequest) -> int:
    """One step, in its own process (fresh.call): the command's own body, so its log reads like the command's."""
    if isinstance(request, BenchRequest):
        return bench_and_say(request.frameworks, {}, request.out, request.options)
    return run_as_command(request)


def _run_step(step: Step, seconds: float, log: Path) -> None:
    """One step in a fresh process; past its share it is stopped like Ctrl-C (SIGTERM) so it writes what it has."""
    started = time.monotonic()
    ended = fresh.call(_step_body, (step.request,), log=log, timeout=max(30.0, seconds))
    step.result = {"exit": ended.exit, "seconds": round(time.monotonic() - started, 1), "stopped": ended.stopped, "log": str(log)}
    if ended.interrupted:  # the whole command was stopped: this step wrote its partial results
        raise KeyboardInterrupt


def run(out: Path, frameworks: tuple[str, ...] | None, minutes: float, dry_run: bool, say: Callable[[str], None] = print) -> int:
    """Run every step within the budget and the report over what they wrote; 0 when every step finished (a run's
    exit 1 is findings, not a failure), 3 when a step was stopped or lost work, 2 when nothing could run."""
    names = present(frameworks)
    if not names:
        say("gpu: none of the frameworks is installed here")
        return 2
    out.mkdir(parents=True, exist_ok=True)
    (out / "logs").mkdir(exist_ok=True)
    gpu = gpu_description()
    if dry_run:
        say("gpu: dry run: the GPU parts are skipped; the same steps run on the CPU with one small suite")
    elif not gpu:
        say("gpu: no GPU visible to nvidia-smi; the frameworks will say why they cannot use one")
    budget, started = minutes * 60.0, time.monotonic()
    plan = steps(out, names, dry_run)
    doc = {"gpu": gpu or None, "dry_run": dry_run, "frameworks": names, "budget_s": budget, "steps": []}
    restore = interrupt_on_sigterm()  # a stop of the whole command ends the step it is in like Ctrl-C
    try:
        for step in plan:
            share = step.share * budget
            say(f"gpu: {step.name} (up to {share:.0f} s): as conformance {' '.join(step.command_line())}")
            try:
                _run_step(step, share, out / "logs" / f"{len(doc['steps'])}.log")
            finally:
                doc["steps"].append({"name": step.name, "args": step.command_line(), **step.result})
            say(f"gpu: {step.name}: exit {step.result['exit']} in {step.result['seconds']} s" + (" (stopped at its share)" if step.result["stopped"] else ""))
    except KeyboardInterrupt:
        doc["stopped"] = True
        say("gpu: stopped; what finished is kept")
    finally:
        restore()
        results = [p for p in (out / "eager" / "results.json", out / "compiled" / "results.json") if p.exists()]
        if results:
            doc["report"] = _report(results, out)
        doc["seconds"] = round(time.monotonic() - started, 1)
        (out / "gpu.json").write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    say(f"gpu: wrote {out} ({doc['seconds']} s)")
    finished = not doc.get("stopped") and all(s.get("exit") in (0, 1) and not s.get("stopped") for s in doc["steps"])
    return 0 if finished else 3


def _report(results: list[Path], out: Path) -> dict:
    """The report over every step's results (and the GPU benchmarks): index.html, report.md, merged.json in `out`."""
    bench = out / "bench" / BENCH_FILE
    try:
        html_report.build(results, out, [bench] if bench.exists() else None, "error")
    except (ResultsError, OSError) as exc:
        return {"exit": 2, "error": str(exc), "results": [str(p) for p in results]}
    return {"exit": 0, "results": [str(p) for p in results]}
