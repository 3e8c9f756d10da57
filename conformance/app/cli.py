"""The `conformance` command line (the SPEC, "Command line").

Exit codes: 0 success; 1 a fail/error record (run), a regression (gate) or a failed benchmark run (bench);
2 bad input or usage: one line on stderr, never a traceback, and nothing already written is touched; 3 an
incomplete run; 4 the environment failed a write (the previous files are intact; one line says where the records are).
"""

from __future__ import annotations

import argparse
import errno
import os
import shlex
import sys
from pathlib import Path

from .. import __version__
from ..adapters import absent_message, missing_packages, registered
from ..adapters.catalogue import Description, describe_all
from ..corpus import bundled
from ..corpus.cases import CaseFileError
from ..corpus.safe_yaml import MAX_ELEMENTS_ENV, MAX_FILE_MB_ENV
from ..judge import known as known_registry
from ..model.names import DEVICES, DTYPES, MODES, OPS, QUANTITIES
from ..model.record import message as record_message
from ..report import summary
from ..run import output
from ..run import results as results_io
from ..run.api import rejudge
from ..run.folder import RunRefused, RunRequest, default_compile_cache, made_in
from ..run.pool import DEFAULT_TIMEOUT_S, Outcome
from ..run.runner import Selection
from ..speed.bench import BenchOptions
from .bench_command import bench_and_say, combine_and_say
from .history import HistoryError
from .run_command import run_and_say, say_verdict


class UsageError(Exception):
    """Bad input: printed as one line, exit 2."""


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


def _frameworks(requested: tuple[str, ...] | None, installed_here: bool = True) -> tuple[tuple[str, ...], dict]:
    """(frameworks to run, absent ones with their reason). Explicitly requested but absent is bad input (unless
    `installed_here` is False: a release history installs the framework into a folder of its own)."""
    known = registered()
    if requested is None:
        absent = {n: absent_message(n, m) for n in known if (m := missing_packages(n))}
        return tuple(n for n in known if n not in absent), absent
    for name in requested:
        if name not in known:
            raise UsageError(f"unknown framework {name!r}; known: {', '.join(known)}")
        missing = missing_packages(name) if installed_here else []
        if missing:
            raise UsageError(absent_message(name, missing))
    return requested, {}


def run_request(args: argparse.Namespace, installed_here: bool = True) -> RunRequest:
    """`conformance run`'s arguments as a RunRequest (parsing only: the frameworks named must exist)."""
    frameworks, absent = _frameworks(args.frameworks, installed_here)
    cache = None if args.no_compile_cache else str(args.compile_cache)
    sel = Selection(frameworks, args.dtypes, args.devices or DEVICES, args.modes, cache, cases=tuple(args.case or ()), impls=tuple(args.impl or ()),
                    ops=args.op or (), quantities=args.quantity or (), named=args.frameworks is not None,
                    devices_named=args.devices is not None)
    return RunRequest(sel, Path(args.out), bundled.resolve(args.cases, bundled.cases_dir()), _registries(args), args.jobs, args.timeout,
                      absent, args.shard)


def cmd_run(args: argparse.Namespace) -> int:
    try:
        return run_and_say(run_request(args), args.include_naive)
    except RunRefused as exc:
        raise UsageError(str(exc)) from None


def cmd_bench(args: argparse.Namespace) -> int:
    if args.combine:
        return combine_and_say(args.combine, Path(args.out))
    frameworks, absent = _frameworks(args.frameworks)
    options = BenchOptions("quick" if args.quick else args.profile, args.threads, args.repeat, args.max_time, args.modes, args.devices,
                           args.dtypes, args.shapes, args.select)
    return bench_and_say(frameworks, absent, _output_folder(Path(args.out)), options)


def cmd_check(args: argparse.Namespace) -> int:
    """A user's own function through the corpus for one op, beside the framework's own function (check.py)."""
    from ..adapters.user import TargetError
    from ..run import check
    from .progress import Progress

    cache = None if args.no_compile_cache else str(args.compile_cache)
    sel = Selection((), args.dtypes, args.devices or DEVICES, args.modes, cache, cases=tuple(args.case or ()), quantities=args.quantity or (),
                    devices_named=args.devices is not None)
    out = Path(args.out)

    def make() -> tuple[dict, check.CheckResult]:
        result = check.run(args.target, args.framework, args.op, sel, bundled.resolve(args.cases, bundled.cases_dir()), args.jobs, _registries(args),
                           returns=args.returns, on_event=Progress())  # progress lines as `run` has them
        return result.doc, result

    try:
        _, result = made_in(out, make, summary.write, refused=(TargetError,))
    except RunRefused as exc:
        raise UsageError(str(exc)) from None
    print("\n".join(result.summary()))
    print(f"wrote {out / 'results.json'} and {out / 'summary.md'}")
    if not result.complete:
        print("INCOMPLETE check: results.json holds what finished and says what is missing", file=sys.stderr)
        return 3
    return 1 if result.failures else 0


def cmd_rejudge(args: argparse.Namespace) -> int:
    """The current registry over a finished run, without running anything: for a run made where it cannot be made
    again (a lent GPU), or a registry that learned a divergence since. The oracle's judgement is kept."""
    doc = rejudge(results_io.read(args.results), _registries(args), oracle=args.oracle)
    out = Path(args.out) if args.out else args.results.parent
    try:
        output.check(out)
        holder = output.live_holder(out)
        if holder is not None:
            raise output.FolderBusy(f"--out {out}: a run (pid {holder.get('pid', '?')}) is writing into it; rejudge when it has finished")
    except output.FolderError as exc:
        raise UsageError(str(exc)) from None
    # The run's marker stays unless this file is that run's own (its summary failed): a killed run's folder stays stale.
    output.save(doc, out, summary.write, doc.get("run_token"))
    incomplete = doc.get("incomplete") or {}
    return say_verdict(doc, Outcome(lost=incomplete.get("lost", []), interrupted=bool(incomplete.get("interrupted"))), out,
                    args.include_naive)


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


def _split_run_args(text: str) -> list[str]:
    """--run-args as the words a shell would make of them; an unbalanced quote is bad input, said in one line."""
    try:
        return shlex.split(text)
    except ValueError as exc:
        raise UsageError(f"--run-args {text!r}: {exc}") from None


def _output_folder(out: Path) -> Path:
    """--out of a command that writes a folder of files (report, diff, bench): one line, exit 2, where it cannot."""
    try:
        output.check(out)
    except output.FolderError as exc:
        raise UsageError(str(exc)) from None
    return out


def cmd_timing(args: argparse.Namespace) -> int:
    """Break down results files; with --measure, first make them (app/timing.py: cold, warm, warm-planned)."""
    from ..report import timing as timing_report
    from . import timing

    paths = list(args.results)
    if args.measure:
        run_args = build_parser().parse_args(["run", *_split_run_args(args.run_args)])  # --run-args are `conformance run`'s
        try:
            paths += timing.measure(run_request(run_args), args.out, say=lambda line: print(line, flush=True))
        except timing.MeasureRefused as exc:
            raise UsageError(str(exc)) from None
    if not paths:
        raise UsageError("name results.json files, or --measure")
    for path in paths:
        print("\n".join(timing_report.render(results_io.read(path), str(path))) + "\n")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    for d in describe_all():
        print(_listing(d), flush=True)
    return 0


def _listing(d: Description) -> str:
    """`conformance list`'s lines for one framework."""
    if d.absent:
        return f"{d.name}: absent ({d.absent})"
    lines = [f"{d.name} {d.version}  devices: {', '.join(d.devices)}"]
    for op, impls in d.implementations.items():  # grouped by op: every door to it, naive last
        lines.append(f"  {op}")
        lines += [f"    {key:54s} {label}" + (f"  [options: {', '.join(options)}]" if options else "") for key, label, options in impls]
    return "\n".join(lines)


def cmd_gate(args: argparse.Namespace) -> int:
    from ..gate import records as gate

    confirm = None
    if args.confirm:
        from ..speed import bench

        where = Path(args.current).parent / "confirm"

        def confirm(tripped: list[dict], current: dict) -> dict:
            print(f"gate: {len(tripped)} speed trip(s): measuring them again in fresh processes ({where})", file=sys.stderr, flush=True)
            return bench.remeasure(tripped, current, where, log=lambda line: print(line, file=sys.stderr, flush=True))

    report = gate.gate(args.baseline, args.current, confirm, include_naive=args.include_naive)
    print(gate.render(report))
    return 0 if report.ok else 1


def cmd_diff(args: argparse.Namespace) -> int:
    from ..report import diff

    base, cur = results_io.read(args.baseline), results_io.read(args.current)
    moves = diff.diff(base, cur)
    written = diff.write(moves, base, cur, _output_folder(Path(args.out)))
    worse = sum(m.worse for m in moves)
    print(f"diff: {len(moves)} record(s) moved ({worse} for the worse); wrote {', '.join(str(p) for p in written)}")
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    from . import history

    if args.framework not in registered():
        raise UsageError(f"unknown framework {args.framework!r}; known: {', '.join(registered())}")
    releases = [history.parse_release(text) for text in args.release]
    # --run-args are `conformance run`'s; the framework is checked when each release runs, with the release on the path
    run_args = build_parser().parse_args(["run", "--frameworks", args.framework, *_split_run_args(args.run_args)])
    pairs = history.history(args.framework, releases, Path(args.out), args.cache, run_request(run_args, installed_here=False),
                            log=lambda line: print(line, file=sys.stderr, flush=True))
    for p in pairs:
        print(f"history: {p.before} -> {p.after}: {len(p.answers)} record(s) changed; {p.verdict}")
    print(f"wrote {Path(args.out) / 'history.md'} and {Path(args.out) / 'history.json'}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from ..report import html as report

    paths = args.results or [Path("reports") / "results.json"]
    for b in args.benchmarks or []:
        if not b.exists():
            raise UsageError(f"{b}: no such benchmark file")
    out = report.build(paths, _output_folder(Path(args.out)), args.benchmarks, args.on_duplicate)
    print(f"wrote {out / 'index.html'} and {out / 'report.md'}")
    return 0


def cmd_fuzz(args: argparse.Namespace) -> int:
    from .fuzz import fuzz

    frameworks, _ = _frameworks(args.frameworks)
    ops = args.ops or OPS
    registries = _registries(args)
    known_registry.load(registries, registered())  # a broken registry is bad input before anything is drawn
    rep = fuzz(frameworks, ops, args.dtypes, args.max_examples, args.seconds, Path(args.out), args.seed, args.modes, registries)
    covered = ", ".join(f"{op}/{dtype}" for op, dtype in sorted(rep.covered))
    print(f"fuzz: {rep.examples} examples in {rep.seconds:.0f}s over {', '.join(frameworks)}; covered {covered or 'nothing'}")
    if rep.found is None:
        print("fuzz: no disagreement with the oracle beyond the registered divergences")
        return 0
    r = rep.found
    print(f"fuzz: DISAGREEMENT {r['framework']} {r['impl']} {r['op']} {r['quantity']} {r['dtype']} {r['mode']}: "
          f"{record_message(r)}")
    print(f"fuzz: shrunk input written to {rep.case_file}; replay it with: conformance run --cases {shlex.quote(str(rep.case_file))} "
          f"--frameworks {r['framework']} --modes {r['mode']}")
    return 1


def cmd_schema(args: argparse.Namespace) -> int:
    """The JSON Schema of case files (editors complete and check against it; the loader checks more)."""
    sys.stdout.write(bundled.schema_file().read_text(encoding="utf-8"))
    return 0


def cmd_gpu(args: argparse.Namespace) -> int:
    from . import gpu_run

    return gpu_run.run(Path(args.out), args.frameworks, args.minutes, args.dry_run)


class _Parser(argparse.ArgumentParser):
    """Bad usage is one line and exit 2, like every other bad input (argparse would print its usage block first)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _add_known(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--known", type=Path, action="append", metavar="FILE",
                        help="known-divergence registry (YAML; repeatable, entries of all files apply): default the bundled one; "
                             "'--known bundled --known ours.yaml' adds a project's own entries to it")


def _registries(args: argparse.Namespace) -> list[Path]:
    return bundled.resolve(args.known, bundled.registry_file())


def _add_run(sub) -> None:
    """`conformance run` and its options."""
    run = sub.add_parser("run", help="run the case corpus through every installed framework")
    run.add_argument("--cases", type=Path, action="append", metavar="PATH",
                     help="case file or folder (repeatable); the word 'bundled' names the bundled corpus: default it alone; "
                          "'--cases bundled --cases ours/' runs it with a project's own cases")
    run.add_argument("--frameworks", type=_csv(None, "framework"), default=None, help="comma-separated (default: every installed one)")
    run.add_argument("--dtypes", type=_csv(DTYPES, "dtype"), default=DTYPES)
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
    run.add_argument("--include-naive", action="store_true",
                     help="count the naive formulas' fails in the exit status (default: reported, not counted, as the gate does)")
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
    run.set_defaults(func=cmd_run)


def _add_check(sub) -> None:
    """`conformance check` and its options (the selection options of run)."""
    from ..adapters.user import FRAMEWORKS, RETURNS

    ck = sub.add_parser("check", help="judge your own softmax or cross-entropy function against the corpus, beside the framework's own")
    ck.add_argument("target", help="module:function or path/to/file.py:function")
    ck.add_argument("--op", required=True, choices=OPS, help="the op your function computes")
    ck.add_argument("--framework", required=True, choices=FRAMEWORKS, help="the framework it is written in (its autodiff and compiler are used)")
    ck.add_argument("--cases", type=Path, action="append", metavar="PATH", help="case files or folders ('bundled': the bundled corpus, the default)")
    ck.add_argument("--case", action="append", metavar="GLOB", help="only cases whose full id matches (repeatable)")
    ck.add_argument("--dtypes", type=_csv(DTYPES, "dtype"), default=DTYPES)
    ck.add_argument("--devices", type=_csv(DEVICES, "device"), default=None, help="default: cpu, and gpu where the framework sees one")
    ck.add_argument("--modes", type=_csv(MODES, "mode"), default=MODES)
    ck.add_argument("--quantity", type=_csv(QUANTITIES, "quantity"), default=None, help="comma-separated quantities")
    ck.add_argument("--returns", choices=RETURNS, default="auto",
                    help="what a cross-entropy without a reduction keyword returns: per-example losses (none), their mean or sum; "
                         "auto (default): inferred from one call, and printed")
    ck.add_argument("--out", default="reports/check", help="output folder (default: reports/check/)")
    ck.add_argument("--jobs", type=_jobs, default=max(2, _usable_cores()), help="worker processes at once")
    ck.add_argument("--compile-cache", type=Path, default=default_compile_cache(), help="as for run")
    ck.add_argument("--no-compile-cache", action="store_true", help="use the framework's default caching instead")
    _add_known(ck)
    ck.set_defaults(func=cmd_check)


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
    bn.set_defaults(func=cmd_bench)


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
    rep.set_defaults(func=cmd_report)

    gt = sub.add_parser("gate", help="regression gate: current results against a baseline")
    gt.add_argument("--baseline", type=Path, required=True)
    gt.add_argument("--current", type=Path, required=True)
    gt.add_argument("--confirm", action="store_true",
                    help="measure benchmarks that tripped again in fresh processes (on the machine of the current run) and "
                         "fail only if the slowdown holds")
    gt.add_argument("--include-naive", action="store_true",
                    help="gate the naive formulas' accuracy and behaviour too (default: reported, not gated: they are expected to break)")
    gt.set_defaults(func=cmd_gate)

    df = sub.add_parser("diff", help="every record that moved between two runs (status, behaviour, NaN/inf, accuracy 2x), as JSON and Markdown")
    df.add_argument("baseline", type=Path)
    df.add_argument("current", type=Path)
    df.add_argument("--out", default="reports/diff", help="folder for diff.json and diff.md (default: reports/diff/)")
    df.set_defaults(func=cmd_diff)

    fz = sub.add_parser("fuzz", help="differential fuzzing against the oracle; writes any disagreement as a YAML case")
    fz.add_argument("--frameworks", type=_csv(None, "framework"), default=None)
    fz.add_argument("--ops", type=_csv(OPS, "op"), default=None)
    fz.add_argument("--dtypes", type=_csv(DTYPES, "dtype"), default=("float32", "float64"))
    fz.add_argument("--modes", type=_csv(MODES, "mode"), default=("eager",))
    fz.add_argument("--max-examples", type=int, default=200)
    fz.add_argument("--seconds", type=float, default=120.0, help="wall-clock budget (default 120)")
    fz.add_argument("--seed", type=int, default=0)
    _add_known(fz)
    fz.add_argument("--out", default="reports/fuzz", help="where a shrunk disagreement is written as a case file")
    fz.set_defaults(func=cmd_fuzz)

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
    gp.set_defaults(func=cmd_gpu)

    hs = sub.add_parser("history", help="one framework's doors across a list of its releases, each consecutive pair diffed and gated both ways")
    hs.add_argument("--framework", required=True, help="the framework whose doors run (a name `conformance list` shows)")
    hs.add_argument("--release", action="append", required=True, metavar="PINS",
                    help="one release as exact pins, in upgrade order (repeatable): 'pkg==1.2.0', or 'pkg==1.2.0 pkglib==1.2.0' (packages that move together)")
    hs.add_argument("--out", default="reports/history", help="folder: one results folder per release, history.md, history.json")
    hs.add_argument("--cache", type=Path, default=default_compile_cache() / "releases",
                    help="where each release is installed once (default: the cache folder's releases/)")
    hs.add_argument("--run-args", default="--modes eager", help="options for each `conformance run` (default: '--modes eager')")
    hs.set_defaults(func=cmd_history)

    rj = sub.add_parser("rejudge", help="apply the current known-divergence registry to a finished run's results.json")
    rj.add_argument("results", type=Path, help="a results.json (the oracle's judgement in it is kept)")
    _add_known(rj)
    rj.add_argument("--include-naive", action="store_true", help="count the naive formulas' fails in the exit status")
    rj.add_argument("--oracle", action="store_true",
                    help="first judge again, by today's oracle, every record whose output the file holds (small outputs)")
    rj.add_argument("--out", default=None, help="folder for results.json and summary.md (default: the results file's own)")
    rj.set_defaults(func=cmd_rejudge)

    tm = sub.add_parser("timing", help="where a run's time goes, per worker and per phase; --measure runs cold, then warm twice")
    tm.add_argument("results", type=Path, nargs="*", help="results.json files to break down")
    tm.add_argument("--measure", action="store_true", help="run the corpus with an empty compile cache, then twice with it warm")
    tm.add_argument("--out", type=Path, default=Path("reports/timing"), help="folder for the measured runs (default reports/timing/)")
    tm.add_argument("--run-args", default="", help="extra arguments for each `conformance run`, e.g. \"--cases cases/shapes.yaml\"")
    tm.set_defaults(func=cmd_timing)

    sch = sub.add_parser("schema", help="print the JSON Schema of case files (for editors and validators)")
    sch.set_defaults(func=cmd_schema)

    lst = sub.add_parser("list", help="frameworks, implementations, versions and devices found")
    lst.set_defaults(func=cmd_list)


# The errors of the machine, not of the input or the frameworks: a full disk or quota, no permission, a read-only file system.
ENVIRONMENT_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS, errno.EIO)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    for flag, env in (("max_file_mb", MAX_FILE_MB_ENV), ("max_elements", MAX_ELEMENTS_ENV)):
        if getattr(args, flag, None) is not None:  # the environment carries the limit to the spawned workers too
            os.environ[env] = repr(getattr(args, flag))
    try:
        return args.func(args)
    except (UsageError, CaseFileError, known_registry.RegistryError, results_io.ResultsError, HistoryError) as exc:
        print(f"conformance: error: {exc}", file=sys.stderr)
        return 2
    except output.WriteFailed as exc:
        print(f"conformance: environment: {exc}", file=sys.stderr)
        return 4
    except OSError as exc:  # the environment failed a write or a read the command could not do without (a full disk)
        if exc.errno not in ENVIRONMENT_ERRNOS:
            raise
        print(f"conformance: environment: {exc.strerror or exc}{f': {exc.filename}' if exc.filename else ''}; "
              "what was written before stays as it was", file=sys.stderr)
        return 4
    except KeyboardInterrupt:
        print("conformance: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
