"""The `conformance` command line's parser: every command, option and check of an argument's form, built from the
light names of the model alone, so that `--help`, `--version` and a typo answer at once (the commands' bodies, with
the frameworks and the layers below, load only once a command runs: app/cli.py)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from .. import __version__
from ..model.names import DEVICES, DTYPES, LOGIT_OPS, MODES, OPS, QUANTITIES, RETURNS
from ..run.defaults import DEFAULT_TIMEOUT_S, default_compile_cache

__all__ = ["build_parser"]


def _csv(allowed: tuple[str, ...] | None, what: str):
    def parse(text: str) -> tuple[str, ...]:
        items = tuple(x.strip() for x in text.split(",") if x.strip())
        if not items:
            raise argparse.ArgumentTypeError(f"empty {what} list")
        if allowed is not None:
            for x in items:
                if x not in allowed:
                    raise argparse.ArgumentTypeError(f"unknown {what} {x!r}; known: {', '.join(allowed)}")
        return items
    return parse


def _shapes(text: str) -> tuple[str, ...]:
    shapes = _csv(None, "shape")(text.lower())
    for shape in shapes:
        parts = shape.split("x")
        if len(parts) != 2 or not all(p.isdigit() and int(p) > 0 for p in parts):
            raise argparse.ArgumentTypeError(f"shape {shape!r} is not NxC (e.g. 1024x1000)")
    return shapes


def _usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _positive(what: str):
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = -1.0
        if not 0 < value < 1e15:
            raise argparse.ArgumentTypeError(f"{what} must be a positive number, not {text!r}")
        return value
    return parse


_seconds = _positive("seconds")


def _share(text: str) -> tuple[int, int]:
    k, _, n = text.partition("/")
    if not (k.isdigit() and n.isdigit() and 1 <= int(k) <= int(n) <= 1000):
        raise argparse.ArgumentTypeError(f"shard must be K/N with 1 <= K <= N <= 1000 (e.g. 2/3), not {text!r}")
    return int(k), int(n)


def _jobs(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"jobs must be a whole number of at least 1, not {text!r}")
    return int(text)


def _threads(text: str) -> int:
    cores = _usable_cores()
    if not text.isdigit() or not 1 <= int(text) <= cores:
        raise argparse.ArgumentTypeError(f"threads must be 1..{cores} (the cores this process may use), not {text!r}")
    return int(text)


class _Parser(argparse.ArgumentParser):
    """Bad usage is one line and exit 2, like every other bad input (argparse would print its usage block first)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _add_ci(parser: argparse.ArgumentParser) -> None:
    """`--junit` and `--quiet`, the same for run, check and gate (app/ci_output.py)."""
    parser.add_argument("--junit", type=Path, metavar="FILE", help="also write JUnit XML there (a test case per record group; gate: per regression)")
    parser.add_argument("--quiet", action="store_true", help="no progress and no report lines: only the one JSON line (conformance-summary ...)")


def _add_known(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--known", type=Path, action="append", metavar="FILE",
                        help="known-divergence registry (YAML; repeatable, entries of all files apply): default the bundled one; "
                             "'--known bundled --known ours.yaml' adds a project's own entries to it")


def _add_run(sub) -> None:
    """`conformance run` and its options."""
    run = sub.add_parser("run", help="run the case corpus through every installed framework")
    run.add_argument("--cases", type=Path, action="append", metavar="PATH",
                     help="case file or folder (repeatable); the word 'bundled' names the bundled corpus: default it alone; "
                          "'--cases bundled --cases ours/' runs it with a project's own cases")
    run.add_argument("--frameworks", type=_csv(None, "framework"), default=None, help="comma-separated (default: every installed one)")
    run.add_argument("--dtypes", type=_csv(DTYPES, "dtype"), default=None, help="comma-separated (default: every dtype; --quick: float32)")
    run.add_argument("--quick", action="store_true",
                     help="a first answer in about two minutes: every installed framework, op and mode on a few cases of each kind "
                          "(published values, extreme logits, masks, invalid input, a mean's gradient), float32, the value and first "
                          "derivatives, the frameworks' own functions (the naive formulas only with --include-naive); "
                          "docs/performance.md has the time")
    run.add_argument("--devices", type=_csv(DEVICES, "device"), default=None,
                     help="default: cpu and, where a framework sees one, gpu (skipped and said so where not); named, a device a "
                          "framework with a GPU path cannot use is an error (the run exits 3 saying why)")
    run.add_argument("--modes", type=_csv(MODES, "mode"), default=MODES)
    run.add_argument("--out", default="reports", help="output folder (default: reports/)")
    run.add_argument("--jobs", type=_jobs, default=max(2, _usable_cores()),
                     help="worker processes at once (default: the cores this process may use, at least 2; 1: everything in this process)")
    run.add_argument("--compile-cache", type=Path, default=default_compile_cache(),
                     help="folder where the frameworks' compilers keep compiled programs between runs (default: $CONFORMANCE_CACHE_DIR, "
                          "else ~/.cache/softmax-conformance); an empty folder gives a cold run")
    run.add_argument("--no-compile-cache", action="store_true", help="use each framework's default caching instead")
    _add_known(run)
    naive = run.add_mutually_exclusive_group()
    naive.add_argument("--include-naive", action="store_true",
                       help="count the naive formulas' fails in the exit status (default: reported, not counted, as the gate does)")
    naive.add_argument("--no-naive", action="store_true",
                       help="leave the naive formulas out (the frameworks' own functions only, as --quick does; about an eighth of "
                            "a full run's time); the gate then compares the frameworks' own functions alone, and says so")
    run.add_argument("--case", action="append", metavar="GLOB", help="run only cases whose full id matches (repeatable), e.g. 'extreme-logits/*'")
    run.add_argument("--impl", action="append", metavar="GLOB", help="run only these implementations (name or glob, repeatable)")
    run.add_argument("--op", type=_csv(OPS, "op"), default=None, help="comma-separated ops")
    run.add_argument("--quantity", type=_csv(QUANTITIES, "quantity"), default=None, help="comma-separated quantities")
    run.add_argument("--shard", type=_share, default=None, metavar="K/N",
                     help="run only share K of the run split across N machines (deterministic, balanced on the declared costs); "
                          "`conformance report` merges the N results files into one run, complete when every share is there")
    run.add_argument("--timeout", type=_seconds, default=DEFAULT_TIMEOUT_S,
                     help=f"seconds a worker may send nothing before it is stopped as hung (default {DEFAULT_TIMEOUT_S:g})")
    run.add_argument("--max-file-mb", type=_positive("max-file-mb"), default=None, help="largest case file read (default 10)")
    run.add_argument("--max-elements", type=_positive("max-elements"), default=None, help="largest array of a case (default 2^22: under 2 GB a worker)")
    _add_ci(run)
    run.set_defaults(func="cmd_run")


def _add_check(sub) -> None:
    """`conformance check` and its options (the selection options of run)."""

    ck = sub.add_parser("check", help="judge your own softmax or cross-entropy function against the corpus, beside the framework's own")
    ck.add_argument("target", help="module:function or path/to/file.py:function")
    ck.add_argument("--op", required=True, choices=OPS, help="the op your function computes")
    ck.add_argument("--framework", required=True,
                    help="the framework it is written in: its autodiff and compiler are used (another name is told which it may be)")
    ck.add_argument("--cases", type=Path, action="append", metavar="PATH", help="case files or folders ('bundled': the bundled corpus, the default)")
    ck.add_argument("--case", action="append", metavar="GLOB", help="only cases whose full id matches (repeatable)")
    ck.add_argument("--dtypes", type=_csv(DTYPES, "dtype"), default=DTYPES)
    ck.add_argument("--devices", type=_csv(DEVICES, "device"), default=None, help="default: cpu, and gpu where the framework sees one")
    ck.add_argument("--modes", type=_csv(MODES, "mode"), default=MODES)
    ck.add_argument("--quantity", type=_csv(QUANTITIES, "quantity"), default=None, help="comma-separated quantities")
    ck.add_argument("--returns", choices=RETURNS, default="auto",
                    help="what a cross-entropy without a reduction keyword returns: per-example losses (none), their mean or sum; "
                         "auto (default): inferred from one call, and printed")
    ck.add_argument("--accumulates-in", choices=("float32", "float64"), default=None,
                    help="the dtype your function computes in for narrower inputs (a fused kernel's float32 accumulation): "
                         "bfloat16 and float16 cases are then judged by that precision plus one rounding of the result")
    ck.add_argument("--out", default="reports/check", help="output folder (default: reports/check/)")
    ck.add_argument("--jobs", type=_jobs, default=max(2, _usable_cores()), help="worker processes at once")
    ck.add_argument("--compile-cache", type=Path, default=default_compile_cache(), help="as for run")
    ck.add_argument("--no-compile-cache", action="store_true", help="use the framework's default caching instead")
    _add_known(ck)
    _add_ci(ck)
    ck.set_defaults(func="cmd_check")


def _add_bench(sub) -> None:
    """`conformance bench` and its options."""
    bn = sub.add_parser("bench", help="speed benchmarks (pytest-benchmark), one framework per process")
    bn.add_argument("--quick", action="store_true", help="CI-sized: fused implementations, float32, 32x10 and 1024x1000 (5-7 minutes on 2 cores)")
    bn.add_argument("--profile", choices=("quick", "full"), default="full",
                    help="full (default): every implementation incl. naive, float32/bfloat16/float16, up to 4096x32000 (8192x128256 on a GPU)")
    bn.add_argument("--frameworks", type=_csv(None, "framework"), default=None, help="comma-separated (default: every installed one)")
    bn.add_argument("--dtypes", type=_csv(DTYPES, "dtype"), default=None, help="default: the profile's")
    bn.add_argument("--modes", type=_csv(MODES, "mode"), default=MODES)
    bn.add_argument("--devices", type=_csv(DEVICES, "device"), default=DEVICES, help="devices not present are skipped and said so")
    bn.add_argument("--shapes", type=_shapes, default=None, help="comma-separated NxC (default: the profile's)")
    bn.add_argument("--threads", type=_threads, default=os.cpu_count() or 1, help="threads (and pinned cores) for every framework (default: all cores)")
    bn.add_argument("--repeat", type=int, default=1, choices=range(1, 11), metavar="R",
                    help="fresh processes per framework, interleaved; each benchmark keeps its fastest process and records all (the gate needs R >= 2)")
    bn.add_argument("--max-time", type=float, default=None, help="pytest-benchmark seconds per benchmark (default: 0.15 quick, 1.0 full)")
    bn.add_argument("-k", dest="select", default=None, help="pytest -k expression over benchmark names, e.g. 'softmax and eager'")
    bn.add_argument("--out", default="reports", help="output folder (default: reports/): benchmarks.json, speed.md, speed_gbps.png")
    bn.add_argument("--combine", type=Path, nargs="+", metavar="BENCHMARKS_JSON",
                    help="run nothing: combine benchmarks.json files of several runs (made at different times, same machine) "
                         "into one speed baseline in --out")
    bn.set_defaults(func="cmd_bench")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="conformance", description="Cross-framework conformance suite for softmax, log-softmax and softmax cross-entropy.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    _add_run(sub)
    _add_check(sub)

    rep = sub.add_parser("report", help="render (and merge) results files into index.html and report.md")
    rep.add_argument("results", type=Path, nargs="*", help="results.json files (default: reports/results.json)")
    rep.add_argument("--benchmarks", type=Path, action="append",
                     help="pytest-benchmark JSON from `conformance bench` (repeatable; a benchmarks.json beside a results file is read anyway)")
    rep.add_argument("--out", default="reports", help="output folder (default: reports/)")
    rep.add_argument("--on-duplicate", choices=("error", "later"), default="error",
                     help="the same record at the same framework version in two files: an error (default) or the later file wins")
    rep.set_defaults(func="cmd_report")

    gt = sub.add_parser("gate", help="regression gate: current results against a baseline")
    gt.add_argument("--baseline", type=Path, required=True)
    gt.add_argument("--current", type=Path, required=True)
    gt.add_argument("--confirm", action="store_true",
                    help="measure benchmarks that tripped again in fresh processes (on the machine of the current run) and "
                         "fail only if the slowdown holds")
    gt.add_argument("--include-naive", action="store_true",
                    help="gate the naive formulas' accuracy and behaviour too (default: reported, not gated: they are expected to break)")
    _add_ci(gt)
    gt.set_defaults(func="cmd_gate")

    df = sub.add_parser("diff", help="every record that moved between two runs (status, behaviour, NaN/inf, accuracy 2x), as JSON and Markdown")
    df.add_argument("baseline", type=Path)
    df.add_argument("current", type=Path)
    df.add_argument("--out", default="reports/diff", help="folder for diff.json and diff.md (default: reports/diff/)")
    df.set_defaults(func="cmd_diff")

    fz = sub.add_parser("fuzz", help="differential fuzzing against the oracle; writes any disagreement as a YAML case")
    fz.add_argument("--frameworks", type=_csv(None, "framework"), default=None)
    fz.add_argument("--ops", type=_csv(LOGIT_OPS, "op"), default=None, help="the ops on logits (default: all of them)")
    fz.add_argument("--dtypes", type=_csv(DTYPES, "dtype"), default=("float32", "float64"))
    fz.add_argument("--modes", type=_csv(MODES, "mode"), default=("eager",))
    fz.add_argument("--max-examples", type=int, default=200)
    fz.add_argument("--seconds", type=float, default=120.0, help="wall-clock budget (default 120)")
    fz.add_argument("--seed", type=int, default=0)
    _add_known(fz)
    fz.add_argument("--out", default="reports/fuzz", help="where a shrunk disagreement is written as a case file")
    fz.set_defaults(func="cmd_fuzz")

    _add_bench(sub)

    _add_small_commands(sub)
    return parser


def _add_small_commands(sub) -> None:
    """`conformance gpu`, `rejudge`, `timing`, `schema` and `list`."""
    gp = sub.add_parser("gpu", help="the prepared GPU job: corpus on CPU and GPU, eager and compiled, GPU benchmarks, report, into one folder")
    gp.add_argument("--out", default="reports/gpu", help="folder for everything (default: reports/gpu/)")
    gp.add_argument("--frameworks", type=_csv(None, "framework"), default=None, help="default: every installed one")
    gp.add_argument("--minutes", type=_positive("minutes"), default=8.0, help="time budget shared by the steps (default 8)")
    gp.add_argument("--dry-run", action="store_true", help="the same steps on the CPU, one small suite, tiny benchmarks")
    gp.set_defaults(func="cmd_gpu")

    hs = sub.add_parser("history", help="one framework's doors across a list of its releases, each consecutive pair diffed and gated both ways")
    hs.add_argument("--framework", required=True, help="the framework whose doors run (a name `conformance list` shows)")
    hs.add_argument("--release", action="append", required=True, metavar="PINS",
                    help="one release as exact pins, in upgrade order (repeatable): 'pkg==1.2.0', or 'pkg==1.2.0 pkglib==1.2.0' (packages that move together)")
    hs.add_argument("--out", default="reports/history", help="folder: one results folder per release, history.md, history.json")
    hs.add_argument("--cache", type=Path, default=default_compile_cache() / "releases",
                    help="where each release is installed once (default: the cache folder's releases/)")
    hs.add_argument("--run-args", default="--modes eager", help="options for each `conformance run` (default: '--modes eager')")
    hs.set_defaults(func="cmd_history")

    rj = sub.add_parser("rejudge", help="apply the current known-divergence registry to a finished run's results.json")
    rj.add_argument("results", type=Path, help="a results.json (the oracle's judgement in it is kept)")
    _add_known(rj)
    rj.add_argument("--include-naive", action="store_true", help="count the naive formulas' fails in the exit status")
    rj.add_argument("--oracle", action="store_true",
                    help="first judge again, by today's oracle, every record whose output the file holds (small outputs)")
    rj.add_argument("--out", default=None, help="folder for results.json and summary.md (default: the results file's own)")
    rj.set_defaults(func="cmd_rejudge")

    tm = sub.add_parser("timing", help="where a run's time goes, per worker and per phase; --measure runs cold, then warm twice")
    tm.add_argument("results", type=Path, nargs="*", help="results.json files to break down")
    tm.add_argument("--measure", action="store_true", help="run the corpus with an empty compile cache, then twice with it warm")
    tm.add_argument("--out", type=Path, default=Path("reports/timing"), help="folder for the measured runs (default reports/timing/)")
    tm.add_argument("--run-args", default="", help="extra arguments for each `conformance run`, e.g. \"--cases cases/shapes.yaml\"")
    tm.set_defaults(func="cmd_timing")

    sch = sub.add_parser("schema", help="print the JSON Schema of case files (for editors and validators)")
    sch.set_defaults(func="cmd_schema")

    lst = sub.add_parser("list", help="frameworks, implementations, versions and devices found")
    lst.add_argument("frameworks", nargs="*", help="only these (default: every registered framework; a GPU-only one where a GPU is visible)")
    lst.add_argument("--fresh", action="store_true",
                     help="import every framework now and ask it (default: on a machine where no GPU can be, the description is read "
                          "from the adapter and the package metadata without importing; elsewhere one is kept in the cache folder "
                          "and reused while the adapter, the framework's packages and the visible devices are the same)")
    lst.set_defaults(func="cmd_list")
