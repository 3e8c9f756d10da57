"""The `conformance` command line (the SPEC, "Command line").

Exit codes: 0 success; 1 a fail/error record (run), a regression (gate) or a failed benchmark run (bench);
2 bad input or usage: one line on stderr, never a traceback, and nothing already written is touched; 3 an
incomplete run; 4 the environment failed a write (the previous files are intact; one line says where the records are).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from ..adapters import absent_message, declared, missing_packages, registered
from ..adapters.base import DeclarationError
from ..adapters.catalogue import Description, describe_all
from ..corpus import bundled, safe_yaml
from ..corpus.cases import CaseFileError
from ..judge import known as known_registry
from ..model.names import DEVICES, DTYPES, LOGIT_OPS
from ..model.record import message as record_message
from ..report import pages
from ..run import output
from ..run import results as results_io
from ..run.api import rejudge
from ..run.config import WorkerConfig
from ..run.defaults import default_compile_cache
from ..run.folder import RunRefused, RunRequest, made_in
from ..run.pool import Outcome, gpu_visible
from ..run.runner import Selection
from ..speed.bench import BenchOptions
from . import ci_output
from .bench_command import bench_and_say, combine_and_say
from .history import HistoryError
from .parser import build_parser
from .run_command import run_and_say, say_verdict


class UsageError(Exception):
    """Bad input: printed as one line, exit 2."""


def _named_or_offered(requested: tuple[str, ...] | None) -> tuple[str, ...]:
    """The registered frameworks a command works on: those named (an unknown name is bad input), else every one, a
    GPU-only framework only where a GPU is visible (on a machine without one it is news only when asked for)."""
    known = registered()
    if requested is None:
        gpu = gpu_visible()
        return tuple(n for n in known if gpu or not declared(n, "GPU_ONLY"))
    for name in requested:
        if name not in known:
            raise UsageError(f"unknown framework {name!r}; known: {', '.join(known)}")
    return tuple(requested)


def _frameworks(requested: tuple[str, ...] | None, installed_here: bool = True) -> tuple[tuple[str, ...], dict]:
    """(frameworks to run, absent ones with their reason). Explicitly requested but absent is bad input (unless
    `installed_here` is False: a release history installs the framework into a folder of its own)."""
    names = _named_or_offered(requested)
    if requested is None:
        absent = {n: absent_message(n, m) for n in names if (m := missing_packages(n))}
        return tuple(n for n in names if n not in absent), absent
    for name in names:
        missing = missing_packages(name) if installed_here else []
        if missing:
            raise UsageError(absent_message(name, missing))
    return requested, {}


def run_request(args: argparse.Namespace, installed_here: bool = True) -> RunRequest:
    """`conformance run`'s arguments as a RunRequest (parsing only: the frameworks named must exist)."""
    frameworks, absent = _frameworks(args.frameworks, installed_here)
    cache = None if args.no_compile_cache else str(args.compile_cache)
    quick = getattr(args, "quick", False)
    dtypes = args.dtypes or (bundled.QUICK_DTYPES if quick else DTYPES)
    cases = tuple(args.case or (bundled.QUICK_CASES if quick else ()))
    quantities = args.quantity or (bundled.QUICK_QUANTITIES if quick else ())
    sel = Selection(frameworks, dtypes, args.devices or DEVICES, args.modes, cache, cases=cases, impls=tuple(args.impl or ()),
                    ops=args.op or (), quantities=quantities, named=args.frameworks is not None,
                    devices_named=args.devices is not None, naive=not getattr(args, "no_naive", False) and (not quick or getattr(args, "include_naive", False)))
    return RunRequest(sel, Path(args.out), bundled.resolve(args.cases, bundled.cases_dir()), _registries(args), args.jobs, args.timeout,
                      absent, args.shard, WorkerConfig(limits=_limits(args)))


def _limits(args: argparse.Namespace) -> safe_yaml.Limits:
    """--max-file-mb and --max-elements, where the command takes them."""
    return safe_yaml.Limits(getattr(args, "max_file_mb", None), getattr(args, "max_elements", None))


def cmd_run(args: argparse.Namespace) -> int:
    try:
        return run_and_say(run_request(args), args.include_naive, args.junit, args.quiet)
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
    from ..adapters.user import FRAMEWORKS, TargetError
    from ..run import check
    from .progress import Progress

    if args.framework not in FRAMEWORKS:
        raise UsageError(f"--framework {args.framework!r}: a function to check is written in one of {', '.join(FRAMEWORKS)}")

    cache = None if args.no_compile_cache else str(args.compile_cache)
    sel = Selection((), args.dtypes, args.devices or DEVICES, args.modes, cache, cases=tuple(args.case or ()), quantities=args.quantity or (),
                    devices_named=args.devices is not None)
    out = Path(args.out)

    def make(log: str) -> tuple[dict, check.CheckResult]:
        result = check.run(args.target, args.framework, args.op, sel, bundled.resolve(args.cases, bundled.cases_dir()), args.jobs, _registries(args),
                           returns=args.returns, accumulates_in=args.accumulates_in, limits=_limits(args), log=log,
                           on_event=(lambda msg: None) if args.quiet else Progress())  # progress as `run` has it
        return result.doc, result

    try:
        _, result = made_in(out, make, pages.write, refused=(TargetError,))
    except RunRefused as exc:
        raise UsageError(str(exc)) from None
    code = 3 if not result.complete else 1 if result.failures else 0
    if not args.quiet:
        print("\n".join(result.summary()))
        print(f"wrote {out / 'results.json'} and {out / 'summary.md'}")
    if not result.complete:
        print("INCOMPLETE check: results.json holds what finished and says what is missing", file=sys.stderr)
    ci_output.emit(result.doc, code, "check", args.junit, job_summary="\n".join(["```", *result.summary(limit=20), "```"]))
    return code


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
    output.save(doc, out, pages.write, doc.get("run_token"))
    incomplete = doc.get("incomplete") or {}
    return say_verdict(doc, Outcome(lost=incomplete.get("lost", []), interrupted=bool(incomplete.get("interrupted"))), out,
                    args.include_naive)


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
    names = _named_or_offered(tuple(args.frameworks) or None)
    for d in describe_all(names, cache=None if args.fresh else default_compile_cache() / "descriptions", imported=args.fresh):
        print(_listing(d), flush=True)
    return 0


def _listing(d: Description) -> str:
    """`conformance list`'s lines for one framework."""
    if d.absent:
        return f"{d.name}: absent ({d.absent})"
    if d.incomplete:
        return f"{d.name}: not usable, `run` refuses it ({d.incomplete})"
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
    if not args.quiet:
        print(gate.render(report))
    ci_output.emit_gate(report, args.junit)
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
    ops = args.ops or LOGIT_OPS
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


def _registries(args: argparse.Namespace) -> list[Path]:
    return bundled.resolve(args.known, bundled.registry_file())


COMMANDS = {name: fn for name, fn in globals().items() if name.startswith("cmd_")}

def main(argv: list[str] | None = None) -> int:
    """The command line: parsed (app/parser.py), then the command run (`dispatch`)."""
    return dispatch(build_parser().parse_args(argv))


def dispatch(args: argparse.Namespace) -> int:
    """Run the parsed command: its exit code, bad input as one line and exit 2, the environment's faults exit 4."""
    safe_yaml.set_limits(_limits(args))  # this process reads the case files with them; every worker gets them too
    try:
        if getattr(args, "junit", None) is not None:
            output.check_file(args.junit, "--junit")
        return COMMANDS[args.func](args)
    except (UsageError, CaseFileError, known_registry.RegistryError, results_io.ResultsError, HistoryError, DeclarationError,
            output.FolderError) as exc:
        print(f"conformance: error: {exc}", file=sys.stderr)
        return 2
    except output.WriteFailed as exc:
        print(f"conformance: environment: {exc}", file=sys.stderr)
        return 4
    except OSError as exc:  # the environment failed a write or a read the command could not do without (a full disk)
        if exc.errno in output.BAD_PATH_ERRNOS:  # a path named that no check before could see was impossible (as root)
            print(f"conformance: error: {f'{exc.filename}: ' if exc.filename else ''}{exc.strerror or exc}", file=sys.stderr)
            return 2
        if exc.errno not in output.ENVIRONMENT_ERRNOS:
            raise
        print(f"conformance: environment: {exc.strerror or exc}{f': {exc.filename}' if exc.filename else ''}; "
              "what was written before stays as it was", file=sys.stderr)
        return 4
    except KeyboardInterrupt:
        print("conformance: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
