"""Running cases through one loaded adapter, in this process: one record per (case, op, quantity, dtype, impl, mode,
device), judged against the oracle. `run_framework` is the body of one worker process (pool.py spreads the work
over them); `judge_case` is the same for one case, for the tests, fuzz and the repro snippets (api.py).
"""

from __future__ import annotations

import functools
import itertools
import json
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from ..adapters import FrameworkAbsent, Unsupported, load_adapter, ownership, package_versions
from ..adapters.base import Adapter, ContractError, Impl, NotRun, Overwritten, declaration, optional_function
from ..corpus.cases import Case, load
from ..corpus.inputs import Inputs, build
from ..judge import oracle
from ..judge.compare import digest, judge, widens
from ..model.record import Record
from ..model.selection import impl_matches, matches
from ..model.status import Status
from . import properties
from .environment import cpu_threads
from .events import CallBegun, CaseBegun, Event, Info, RecordMade, ShardProgress, TimingOf
from .output import ENVIRONMENT_ERRNOS


class FrameworkBroken(Exception):
    """A framework named explicitly (--frameworks) could not be loaded; str() is the one line to show."""


class EnvironmentFailure(Exception):
    """A framework call failed on the machine, not on the input (output.ENVIRONMENT_ERRNOS): str() says which file and why."""


def environment_failure(impl: Impl, error: BaseException) -> EnvironmentFailure | None:
    """The machine's fault behind a framework call's exception (an OSError of ENVIRONMENT_ERRNOS anywhere in its
    chain: a full disk under its compile cache), or None where the exception is the framework's answer."""
    for e in ownership.chain(error):
        if isinstance(e, OSError) and e.errno in ENVIRONMENT_ERRNOS:
            return EnvironmentFailure(f"{impl.framework} could not use its files ({e.strerror or e}{f': {e.filename}' if e.filename else ''})")
    return None


@dataclass(frozen=True)
class Selection:
    frameworks: tuple[str, ...]
    dtypes: tuple[str, ...]
    devices: tuple[str, ...]
    modes: tuple[str, ...]
    compile_cache: str | None = None  # folder for the frameworks' persistent compilation caches (None: their defaults)
    cases: tuple[str, ...] = ()  # globs on the full case id ("extreme-logits/*"); empty: every case
    impls: tuple[str, ...] = ()  # globs on the implementation name; empty: every implementation
    ops: tuple[str, ...] = ()  # empty: every op
    quantities: tuple[str, ...] = ()  # empty: every quantity a case asks for
    named: bool = False  # the frameworks were named on the command line: one that cannot be loaded is bad input
    devices_named: bool = False  # the devices were named: a GPU that was asked for and cannot be used is an error
    exclude: tuple[str, ...] = ()  # full case ids left to other shards (the assert-prone ones on a GPU)
    skip_calls: tuple[tuple[str, str, str, str, str], ...] = ()  # (case, impl_id, dtype, mode, device) a crashed worker made or died in
    naive: bool = True  # the textbook formulas too (`run --quick` leaves them out: a first answer is about the frameworks' own)

    def wants_case(self, full_id: str) -> bool:
        if full_id in self.exclude:
            return False
        return not self.cases or matches(full_id, self.cases)

    def wants_impl(self, impl: Impl) -> bool:
        """By stable id or by label, exactly or as a glob."""
        if impl.naive and not self.naive:
            return False
        return not self.impls or impl_matches(impl.id, impl.name, self.impls)

    def quantities_of(self, case: Case, op: str) -> tuple[str, ...]:
        wanted = case.quantities_for(op)
        return tuple(q for q in wanted if q in self.quantities) if self.quantities else wanted

    def to_json(self) -> dict:
        """What the run covered, so that a gate can tell a narrowed run from one that lost records."""
        return {"frameworks": list(self.frameworks), "dtypes": list(self.dtypes), "devices": list(self.devices),
                "modes": list(self.modes), "cases": list(self.cases), "impls": list(self.impls), "ops": list(self.ops),
                "quantities": list(self.quantities), "naive": self.naive}


@dataclass
class Timing:
    """Where one worker's seconds went, by phase: import (the framework and its adapter), cases (loading the case
    files), inputs (building and rounding arrays), oracle, framework (the adapter's evaluate: tracing, compiling or
    loading compiled programs, and computing), judge (comparing and building records), send (records to the parent).
    `by_mode` keeps, per "mode/dtype", the framework calls' seconds plus that mode's share of the inputs and oracle
    (built once per (case, op, dtype) for every mode of the worker): the planner's measured cost."""
    phases: Counter = field(default_factory=Counter)
    shared: Counter = field(default_factory=Counter)  # inputs + oracle per dtype (every mode uses them)
    framework: Counter = field(default_factory=Counter)  # framework calls per "mode/dtype"
    units_by_dtype: Counter = field(default_factory=Counter)  # (case, op, dtype) units done
    cache_replaced: int = 0  # damaged compile-cache files discarded (and their programs compiled again)

    def add(self, phase: str, seconds: float, dtype: str | None = None, mode: str | None = None) -> None:
        self.phases[phase] += seconds
        if dtype is None:
            return
        if mode is None:
            self.shared[dtype] += seconds
        else:
            self.framework[f"{mode}/{dtype}"] += seconds

    def by_dtype(self) -> dict[str, float]:
        """inputs + oracle + framework calls per dtype."""
        totals = Counter(self.shared)
        for mode_dtype, seconds in self.framework.items():
            totals[mode_dtype.partition("/")[2]] += seconds
        return {d: round(s, 3) for d, s in totals.items()}

    def by_mode(self, modes: tuple[str, ...]) -> dict[str, float]:
        return {f"{m}/{d}": round(self.framework[f"{m}/{d}"] + self.shared[d] / len(modes), 3) for m in modes for d in self.units_by_dtype}

    def to_json(self, modes: tuple[str, ...] = ()) -> dict:
        out = {"phases": {k: round(v, 3) for k, v in self.phases.items()}, "by_dtype": self.by_dtype(),
               "by_mode": self.by_mode(modes) if modes else {}, "units_by_dtype": dict(self.units_by_dtype)}
        if self.cache_replaced:
            out["cache_replaced"] = self.cache_replaced
        return out


@dataclass
class HarnessFailure:
    """What the harness itself could not do for one (case, op, dtype): build its inputs or the oracle's references
    (a MemoryError, a reference that cannot be computed). It costs that case's records, each an `error` saying
    where it was raised, and the worker goes on with the next case."""
    op: str
    dtype: str
    where: str  # "inputs" or "oracle"
    exc: BaseException


def case_inputs(cases: list[Case], sel: Selection, timing: Timing | None = None,
                offered: frozenset[str] | None = None) -> Iterator[tuple[Case, Inputs | HarnessFailure, dict]]:
    """Every selected (case, op, dtype) as concrete inputs, with the oracle's references for its quantities; a
    HarnessFailure in place of the inputs where building them or the references raised. `offered`: the ops a worker's
    framework has doors for (None: every op); the others cost no oracle there."""
    timing = timing or Timing()
    for case in cases:
        if not sel.wants_case(case.full_id):
            continue
        for op in case.ops:
            if (sel.ops and op not in sel.ops) or (offered is not None and op not in offered):
                continue
            quantities = sel.quantities_of(case, op)
            if not quantities:
                continue
            for dtype in case.dtypes:
                if dtype not in sel.dtypes:
                    continue
                started = built = time.perf_counter()
                where = "inputs"
                try:
                    inputs = build(case, op, dtype)
                    built, where = time.perf_counter(), "oracle"
                    refs = references(case, inputs, quantities)
                except Exception as exc:  # MemoryError included: the arrays that failed are gone with the frame
                    inputs, refs = HarnessFailure(op, dtype, where, exc), {}
                timing.add("inputs", built - started, dtype)
                timing.add("oracle", time.perf_counter() - built, dtype)
                timing.units_by_dtype[dtype] += 1
                yield case, inputs, refs


def references(case: Case, inputs: Inputs, quantities: tuple[str, ...]) -> dict:
    """The oracle's reference for each quantity. On an input with no answer as a whole it answers the entries that
    have one (NaN elsewhere), which the judge then measures; an invalid input the oracle cannot take at all has no
    reference, and is judged by behaviour alone."""
    if not case.invalid:
        return {q: oracle.compute(inputs, q) for q in quantities}
    refs = {}
    for q in quantities:
        try:
            refs[q] = oracle.compute(inputs, q)
        except Exception:  # noqa: BLE001 - an input invalid as a whole (a label of another shape): nothing to measure
            pass
    return refs


def records_for(adapter: Adapter, case: Case, inputs: Inputs, refs: dict, sel: Selection, devices: Sequence[str],
                timing: Timing | None = None, on_call: Callable[[CallBegun], None] | None = None) -> Iterator[Record]:
    """Run every selected implementation of this op in `adapter` and judge each quantity. `on_call` hears of each
    framework call before it is made (the worker tells its parent, which makes the call's records if it dies)."""
    timing = timing or Timing()
    if isinstance(inputs, HarnessFailure):
        yield from _failure_records(adapter, case, inputs, sel, devices)
        return
    quantities = sel.quantities_of(case, inputs.op)
    scale = logit_scale(inputs)
    modes = sel.modes
    for impl in adapter.implementations():
        if impl.op != inputs.op or not sel.wants_impl(impl):
            continue
        for device in devices:
            for mode in modes:
                if not impl.runs(case.full_id, mode, inputs.dtype, device):
                    continue
                call = (case.full_id, impl.id, inputs.dtype, mode, device)
                if call in sel.skip_calls:
                    continue
                if on_call is not None:
                    on_call(CallBegun(call, call_context(case, inputs.op, inputs.dtype, impl, mode, device), quantities))
                started = time.perf_counter()
                outs = _evaluate_healing(adapter, impl, inputs, quantities, mode, device, timing)
                elapsed = time.perf_counter() - started
                again = functools.partial(_evaluate_healing, adapter, impl, quantities=quantities, mode=mode, device=device, timing=timing)
                found = properties.probe(again, inputs, outs, refs, quantities, case.properties, impl.accumulates_in) if case.properties else {}
                timing.add("framework", time.perf_counter() - started, inputs.dtype, mode)
                owners = _framework_dirs(adapter)
                for q in quantities:
                    judged = time.perf_counter()
                    record = make_record(case, inputs, impl, q, mode, device, outs.get(q), refs.get(q), elapsed, scale, owners)
                    if found.get(q):
                        record = record.but(**found[q])
                    if isinstance(outs.get(q), BaseException) and record.error and hasattr(adapter, "error_message"):
                        record = record.but(error={**record.error, "message": adapter.error_message(outs.get(q))[:300]})
                    timing.add("judge", time.perf_counter() - judged)
                    yield record


def _evaluate_healing(adapter: Adapter, impl: Impl, inputs: Inputs, quantities: tuple[str, ...], mode: str, device: str,
                      timing: Timing) -> dict:
    """adapter.evaluate; where a compiled call failed on a damaged entry of the compile cache (the adapter's
    `cache_damaged`), the entry is discarded (`discard_cache`) and the call made again, once, on a fresh program:
    a damaged cache costs a recompilation, never a wrong verdict."""
    def call() -> dict:
        try:
            return adapter.evaluate(impl, inputs, quantities, mode, device)
        except Unsupported as exc:
            return {q: exc for q in quantities}
        except OSError as exc:
            fault = environment_failure(impl, exc)
            if fault is None:
                raise
            raise fault from None

    outs = call()
    damaged = [e for e in outs.values() if isinstance(e, BaseException) and not isinstance(e, Unsupported)
               and mode == "compiled" and (optional_function(adapter, "cache_damaged") or (lambda e: False))(e)]
    if damaged:
        timing.cache_replaced += adapter.discard_cache(damaged[0])
        outs = call()
    return outs


def _failure_records(adapter: Adapter, case: Case, failure: HarnessFailure, sel: Selection, devices: Sequence[str]) -> Iterator[Record]:
    """The records of a (case, op, dtype) the harness could not prepare: `error`, raised in the harness, not the framework."""
    exc = failure.exc
    message = f"{type(exc).__name__} in the harness ({failure.where} of {case.full_id} {failure.op} {failure.dtype}): {str(exc)[:200]}"
    for impl in adapter.implementations():
        if impl.op != failure.op or not sel.wants_impl(impl):
            continue
        for device, mode, q in itertools.product(devices, sel.modes, sel.quantities_of(case, failure.op)):
            if not impl.runs(case.full_id, mode, failure.dtype, device):
                continue
            yield Record(status=Status.ERROR, behaviour="error", detail=message, quantity=q,
                         **call_context(case, failure.op, failure.dtype, impl, mode, device),
                         error={"type": type(exc).__name__, "message": message, "where": f"harness/{failure.where}"})


def units(cases: list[Case], sel: Selection, offered: frozenset[str] | None = None) -> int:
    """How many (case, op, dtype) the selection takes from these cases: the unit of progress of one worker (whose
    framework offers the ops `offered`; None: every op)."""
    return sum(1 for c in cases if sel.wants_case(c.full_id) for op in c.ops
               if (not sel.ops or op in sel.ops) and (offered is None or op in offered) and sel.quantities_of(c, op)
               for d in c.dtypes if d in sel.dtypes)


def judge_case(adapter: Adapter, case: Case, sel: Selection, devices: Sequence[str] = ("cpu",)) -> list[Record]:
    """Every record of one case for one loaded adapter, judged against the oracle (before the registry is applied):
    the library call behind `conformance run`, the corpus tests and `conformance fuzz`."""
    records = []
    for c, inputs, refs in case_inputs([case], sel):
        records.extend(records_for(adapter, c, inputs, refs, sel, devices))
    return records


def logit_scale(inputs: Inputs) -> float | None:
    """max |logit| over the finite logits: the x axis of the report's error-against-scale plot."""
    finite = inputs.logits[np.isfinite(inputs.logits)]
    return float(np.max(np.abs(finite.astype(np.float64)))) if finite.size else None


_DIRS: dict[str, tuple[str, ...]] = {}


def _framework_dirs(adapter: Adapter) -> tuple[str, ...]:
    """The folders of the packages an adapter runs (REQUIRES and PACKAGES): frames there are the framework's."""
    name = adapter.NAME
    if name not in _DIRS:
        _DIRS[name] = ownership.package_dirs({*declaration(adapter, "REQUIRES"), *declaration(adapter, "PACKAGES")})
    return _DIRS[name]


def call_context(case: Case, op: str, dtype: str, impl: Impl, mode: str, device: str) -> dict:
    """What every record of one call carries besides its quantity and verdict: identity and context."""
    return {"case": case.full_id, "op": op, "dtype": dtype, "framework": impl.framework, "impl": impl.name, "mode": mode,
            "device": device, "impl_id": impl.id, "case_file": str(Path(case.path).resolve()), "naive": impl.naive, "invalid": case.invalid}


def crash_records(begun: CallBegun, why: str, hung: bool = False, answered: set[str] | frozenset[str] = frozenset()) -> list[dict]:
    """The records of a call during which the worker process died (a signal, an abort, an exit) or which never
    returned (`hung`: killed by the watchdog): `error`, the cause named, for every quantity the call was to answer
    but those whose records already arrived (`answered`: a value sent before the backward aborted). A crash or a
    hang is the framework's answer to that input."""
    error = {"type": "ProcessHang" if hung else "ProcessCrash", "message": why, "where": "the worker process"}
    return [Record(status=Status.ERROR, behaviour="error", detail=why, quantity=q, error=dict(error), **begun.record)
            for q in begun.quantities if q not in answered]


def make_record(case: Case, inputs: Inputs, impl: Impl, quantity: str, mode: str, device: str, out: Any, ref: oracle.Reference, elapsed: float,
                scale: float | None, owners: tuple[str, ...] = ()) -> Record:
    """The verdict on one quantity of one call: `out` is the adapter's value, an Unsupported, or what it raised.
    `owners`: the framework's package folders; an exception that the calling code itself raised (ownership) is an
    error of that code, or `unsupported` where the installed release does not take a keyword the call passes."""
    ran = {**call_context(case, inputs.op, inputs.dtype, impl, mode, device), "quantity": quantity, "seconds": round(elapsed, 6),
           "logit_scale": scale, "composed": ["reduction"] if impl.reduction_composed(inputs) else None}
    if isinstance(out, Unsupported):
        return Record(status=Status.UNSUPPORTED, behaviour=None, reason=str(out), **{**ran, "composed": None})  # nothing ran, nothing composed
    if isinstance(out, NotRun):
        return Record(status=Status.SKIP, behaviour=None, reason=str(out), **{**ran, "composed": None})
    error = out if isinstance(out, BaseException) else None
    fault = environment_failure(impl, error) if error is not None else None
    if fault is not None:  # a full disk under the compile cache is the machine's, never the framework's error record
        raise fault
    broken = next((e for e in ownership.chain(error) if isinstance(e, ContractError)), None) if error is not None else None
    if broken is not None:  # an answer outside the op's contract: the call's error, never a signal on an invalid input
        message = f"contract: {str(broken)[:280]}"
        return Record(status=Status.ERROR, behaviour="error", detail=message,
                      error={"type": "ContractError", "message": message, "where": "the call's answer"}, **ran)
    where = ownership.raised_by_code(error, owners) if error is not None else None
    if where:
        keyword = ownership.missing_keyword(error)
        if keyword:
            return Record(status=Status.UNSUPPORTED, behaviour=None, reason=f"this release of {impl.name} takes no '{keyword}' argument", **ran)
        function = ownership.missing_function(error, impl.name)
        if function:
            return Record(status=Status.UNSUPPORTED, behaviour=None, reason=f"the installed release has no {function}", **ran)
        message = f"{type(error).__name__} raised by the calling code at {where}, not by the framework: {str(error)[:200]}"
        return Record(status=Status.ERROR, behaviour="error", detail=message,
                      error={"type": type(error).__name__, "message": message, "where": f"code {where}"}, **ran)
    if out is None and error is None:
        error = RuntimeError(f"the adapter returned no {quantity}")
    written = out.what if isinstance(out, Overwritten) else None
    out = out.value if isinstance(out, Overwritten) else out
    v = judge(None if error else out, error, ref, quantity, inputs.dtype, inputs.classes, case.invalid, case.expect,
              impl.answers_in if quantity == "value" else None,  # a gradient comes in the input's dtype
              impl.accumulates_in)
    verdict = {f.name: getattr(v, f.name) for f in fields(v)}
    if written:  # right or wrong, an answer that cost the caller its inputs fails; no registry entry explains it
        verdict.update(status=Status.FAIL, detail="; ".join(filter(None, [f"the call wrote into its input {written}", verdict["detail"]])))
    answer = digest(out) if error is None and isinstance(out, np.ndarray | np.generic) else None
    other_dtype = error is None and hasattr(out, "dtype") and str(out.dtype) != inputs.dtype  # computed in another dtype (a global float type)
    return Record(**verdict, overwritten=written, answer=answer, **ran, out_dtype=str(out.dtype) if other_dtype else None,
                  accumulates_in=impl.accumulates_in if widens(inputs.dtype, impl.accumulates_in) else None)


def plain(info: dict) -> dict:
    """What a framework says about itself as JSON's own types, which is what results.json keeps of it. The frameworks'
    own types do not cross the pipe: a version string of a framework's own str subclass made the run's parent import
    that framework to unpickle it (1.5-2.5 s of a core while the workers start, and its Info arrived that late)."""
    return json.loads(json.dumps(info, default=str))


def run_framework(name: str, case_paths: list[str], sel: Selection, emit: Callable[[Event], None]) -> None:
    """Body of one worker: load the adapter, run every case, emit its events (events.py).
    A framework that cannot be loaded is "absent" (skipped) only when it was not named and its package is
    missing; named, it is bad input (FrameworkBroken); installed but broken, the worker fails (its shard is lost)."""
    timing, started = Timing(), time.perf_counter()
    try:
        adapter = load_adapter(name, Path(sel.compile_cache) if sel.compile_cache else None)
    except FrameworkAbsent as exc:
        if sel.named:
            raise FrameworkBroken(str(exc)) from None
        emit(Info(name, {"absent": str(exc)}))
        return
    except Exception as exc:
        why = f"{name} failed to import: {type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
        raise (FrameworkBroken(why) if sel.named else RuntimeError(why)) from None
    devices = [d for d in sel.devices if d in adapter.devices()]
    unusable = [d for d in sel.devices if d not in devices and d != "cpu"]
    if unusable and sel.devices_named and declaration(adapter, "GPU"):
        problems = (optional_function(adapter, "device_problems") or dict)()
        raise RuntimeError(f"{unusable[0]} requested but {name} cannot use it: {problems.get(unusable[0], 'not visible')}")
    info = {"version": adapter.version(), "packages": package_versions(adapter), "devices": adapter.devices(),
            "flags": adapter.flags(), "compile_cache": sel.compile_cache, "threads": cpu_threads(),
            "implementations": [[impl.op, impl.name, impl.id] for impl in adapter.implementations()]}
    skipped = [d for d in sel.devices if d not in devices]
    if skipped:
        info["skipped_devices"] = {d: f"no {d} visible to {name}" for d in skipped}
    timing.add("import", time.perf_counter() - started)
    emit(Info(name, plain(info)))
    started = time.perf_counter()
    cases = load([Path(p) for p in case_paths])
    timing.add("cases", time.perf_counter() - started)
    per_unit = len(sel.modes)  # a unit is a (case, op, dtype) in every mode of this worker: the plan counts modes apart
    offered = frozenset(i.op for i in adapter.implementations() if sel.wants_impl(i))
    total = units(cases, sel, offered) * per_unit
    done, current = 0, None
    for case, inputs, refs in case_inputs(cases, sel, timing, offered):
        if case.full_id != current:  # the parent knows which case a worker that dies was on, and what is left
            current = case.full_id
            emit(CaseBegun(name, current))
        for record in records_for(adapter, case, inputs, refs, sel, devices, timing, emit):
            sent = time.perf_counter()
            emit(RecordMade(record))
            timing.add("send", time.perf_counter() - sent)
        done += per_unit
        emit(ShardProgress(name, done, total))
    emit(TimingOf(name, timing.to_json(sel.modes)))


