"""Running the corpus through the adapters: one record per (case, op, quantity, dtype, impl, mode, device).

The work is split into shards, each a worker process (spawned, so no framework state leaks into another and
a crash in one framework's native code loses only that shard's remaining records): one per (framework, mode),
and where that would be long, one per dtype (see `plan`). Records stream back to the parent as they are made,
which draws the progress display and keeps everything already computed if the run is interrupted.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import oracle
from .adapters import FrameworkAbsent, Unsupported, cold_seconds, load_adapter
from .cases import Case, load
from .compare import judge
from .inputs import Inputs, build


@dataclass(frozen=True)
class Selection:
    frameworks: tuple[str, ...]
    dtypes: tuple[str, ...]
    devices: tuple[str, ...]
    modes: tuple[str, ...]
    compile_cache: str | None = None  # folder for the frameworks' persistent compilation caches (None: their defaults)


def case_inputs(cases: list[Case], dtypes: tuple[str, ...]) -> Iterator[tuple[Case, Inputs, dict]]:
    """Every (case, op, dtype) as concrete inputs, with the oracle's references for its quantities."""
    for case in cases:
        for op in case.ops:
            for dtype in case.dtypes:
                if dtype not in dtypes:
                    continue
                inputs = build(case, op, dtype)
                refs = {} if case.invalid else {q: oracle.compute(inputs, q) for q in case.quantities_for(op)}
                yield case, inputs, refs


def records_for(adapter, case: Case, inputs: Inputs, refs: dict, modes, devices) -> Iterator[dict]:
    """Run every implementation of this op in `adapter` and judge each quantity."""
    quantities = case.quantities_for(inputs.op)
    scale = logit_scale(inputs)
    for impl in adapter.implementations():
        if impl.op != inputs.op:
            continue
        for device in devices:
            for mode in modes:
                started = time.perf_counter()
                try:
                    outs = adapter.evaluate(impl, inputs, quantities, mode, device)
                except Unsupported as exc:
                    outs = {q: exc for q in quantities}
                elapsed = time.perf_counter() - started
                for q in quantities:
                    yield make_record(case, inputs, impl, q, mode, device, outs.get(q), refs.get(q), elapsed, scale)


def logit_scale(inputs: Inputs) -> float | None:
    """max |logit| over the finite logits: the x axis of the report's error-against-scale plot."""
    finite = inputs.logits[np.isfinite(inputs.logits)]
    return float(np.max(np.abs(finite.astype(np.float64)))) if finite.size else None


def make_record(case: Case, inputs: Inputs, impl, quantity: str, mode: str, device: str, out, ref, elapsed: float,
                scale: float | None) -> dict:
    base = {"case": case.full_id, "op": inputs.op, "quantity": quantity, "dtype": inputs.dtype,
            "framework": impl.framework, "impl": impl.name, "mode": mode, "device": device}
    extras = {"naive": impl.naive, "invalid": case.invalid, "seconds": round(elapsed, 6), "logit_scale": scale}
    if impl.reduction_composed(inputs):
        extras["composed"] = ["reduction"]
    if isinstance(out, Unsupported):
        return {**base, "status": "unsupported", "behaviour": None, "max_abs_err": None, "max_rel_err": None,
                "max_ulp": None, "size": 0, "nan_count": 0, "inf_count": 0, "error": None, "known": None,
                "reason": str(out), **extras}
    error = out if isinstance(out, BaseException) else None
    if out is None and error is None:
        error = RuntimeError(f"the adapter returned no {quantity}")
    v = judge(None if error else out, error, ref, quantity, inputs.dtype, inputs.classes, case.invalid, case.expect)
    record = {**base, "status": v.status, "behaviour": v.behaviour, "max_abs_err": v.max_abs_err,
              "max_rel_err": v.max_rel_err, "max_ulp": v.max_ulp, "size": v.size, "nan_count": v.nan_count,
              "inf_count": v.inf_count, "error": v.extra.pop("error", None), "known": None, **extras,
              "tol_ratio": v.tol_ratio}
    if error is None and hasattr(out, "dtype") and str(out.dtype) != inputs.dtype and not (
            inputs.dtype == "bfloat16" and str(out.dtype) == "float32"):  # bfloat16 is read back via float32
        record["out_dtype"] = str(out.dtype)
    for key in ("detail", "worst_index", "output", "expected"):
        if getattr(v, key) is not None:
            record[key] = getattr(v, key)
    record.update(v.extra)
    return record


def run_framework(name: str, case_paths: list[str], sel: Selection, emit: Callable[[tuple], None]) -> None:
    """Body of one worker: load the adapter, run every case, emit ("record", r) / ("info", d) messages."""
    try:
        adapter = load_adapter(name, Path(sel.compile_cache) if sel.compile_cache else None)
    except FrameworkAbsent as exc:
        emit(("info", name, {"absent": str(exc)}))
        return
    devices = [d for d in sel.devices if d in adapter.devices()]
    info = {"version": adapter.version(), "devices": adapter.devices(), "flags": adapter.flags(), "compile_cache": sel.compile_cache}
    skipped = [d for d in sel.devices if d not in devices]
    if skipped:
        info["skipped_devices"] = {d: f"no {d} visible to {name}" for d in skipped}
    emit(("info", name, info))
    cases = load([Path(p) for p in case_paths])
    total = sum(len(c.ops) * len([d for d in c.dtypes if d in sel.dtypes]) for c in cases)
    done = 0
    for case, inputs, refs in case_inputs(cases, sel.dtypes):
        for record in records_for(adapter, case, inputs, refs, sel.modes, devices):
            emit(("record", record))
        done += 1
        emit(("progress", name, done, total))


@dataclass(frozen=True)
class Shard:
    """One worker process's share of the run: a framework in one mode, for some of the selected dtypes."""
    framework: str
    mode: str
    dtypes: tuple[str, ...]
    name: str  # for the progress display: framework/mode, plus the dtypes where the pair was split
    cost: float  # estimated seconds (COLD_SECONDS of the adapter), for the order


# A dtype whose cold run is estimated above this many seconds gets a worker of its own. Programs never cross
# dtypes (a torch.compile graph, a jax.jit program, an XLA primitive are all specialised to one), so a dtype
# split compiles nothing twice; it lets the two cores of the build VM share torch.compile's 820 s instead of
# one core doing it alone while the other idles. Below it, a worker's start-up (importing the framework, a
# few seconds) is not worth paying again.
SPLIT_ABOVE_S = 60.0


def plan(sel: Selection) -> list[Shard]:
    """Every (framework, mode, dtype) of the selection in exactly one shard, longest first (so that no long
    shard starts last and the workers end together)."""
    shards = []
    for framework in sel.frameworks:
        costs = cold_seconds(framework)
        for mode in sel.modes:
            cost = {d: float(costs.get((mode, d), 0.0)) for d in sel.dtypes}
            alone = [(d,) for d in sel.dtypes if cost[d] > SPLIT_ABOVE_S]
            rest = tuple(d for d in sel.dtypes if cost[d] <= SPLIT_ABOVE_S)
            groups = alone + ([rest] if rest else [])
            for dtypes in groups:
                name = f"{framework}/{mode}" + (f"/{'+'.join(dtypes)}" if len(groups) > 1 else "")
                shards.append(Shard(framework, mode, dtypes, name, sum(cost[d] for d in dtypes)))
    return sorted(shards, key=lambda s: -s.cost)


def _exit_with_parent(parent: int) -> None:
    """A worker whose parent is gone (killed outright, so it could not stop its workers) has nobody to send records
    to: it ends instead of burning the machine's cores for nothing (seen: two orphans computing for 30 minutes)."""
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)
    threading.Thread(target=watch, daemon=True, name="exit-with-parent").start()


def _worker(shard: Shard, case_paths: list[str], sel: Selection, q, threads: int, parent: int) -> None:
    _exit_with_parent(parent)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(var, str(threads))
    part = Selection(sel.frameworks, shard.dtypes, sel.devices, (shard.mode,), sel.compile_cache)
    try:
        run_framework(shard.framework, case_paths, part, lambda msg: q.put(_tag(msg, shard.name)))
    except Exception:
        q.put(("crash", shard.name, traceback.format_exc(limit=4)))
    q.put(("done", shard.name))


def _tag(msg: tuple, shard: str) -> tuple:
    """Progress and completion are per shard; records and info are per framework."""
    return (msg[0], shard, *msg[2:]) if msg[0] == "progress" else msg


def run(case_paths: list[Path], sel: Selection, jobs: int, on_event: Callable[[tuple], None]) -> tuple[list[dict], dict]:
    """Run every shard of `plan(sel)` in parallel worker processes, at most `jobs` at a time.
    Returns (records, per-framework info).

    `on_event` sees every message for the progress display. KeyboardInterrupt or SIGTERM stops the workers and
    returns what was already collected, with info["_interrupted"] set."""
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    paths = [str(p) for p in case_paths]
    pending = plan(sel)
    running: dict[str, mp.Process] = {}
    records: list[dict] = []
    info: dict = {}
    threads = max(1, (os.cpu_count() or 1) // max(1, min(jobs, len(pending))))  # equal share, no oversubscription
    restore = _interrupt_on_sigterm()
    try:
        while pending or running:
            while pending and len(running) < jobs:
                shard = pending.pop(0)
                proc = ctx.Process(target=_worker, args=(shard, paths, sel, q, threads, os.getpid()), daemon=True)
                proc.start()
                running[shard.name] = proc
            try:
                msg = q.get(timeout=0.5)
            except queue.Empty:
                for name, proc in list(running.items()):
                    if not proc.is_alive():  # died without saying "done": native crash or killed
                        framework = name.split("/")[0]
                        info.setdefault(framework, {})["crash"] = f"worker {name} exited with code {proc.exitcode}"
                        on_event(("crash", name, info[framework]["crash"]))
                        del running[name]
                continue
            kind = msg[0]
            if kind == "record":
                records.append(msg[1])
            elif kind == "info":
                info.setdefault(msg[1], {}).update(msg[2])
            elif kind == "crash":
                info.setdefault(msg[1].split("/")[0], {})["crash"] = msg[2]
            elif kind == "done":
                proc = running.pop(msg[1], None)
                if proc is not None:
                    proc.join(timeout=10)
            on_event(msg)
    except KeyboardInterrupt:
        for proc in running.values():
            proc.terminate()
        info["_interrupted"] = True
    finally:
        restore()
    return records, info


def _interrupt_on_sigterm() -> Callable[[], None]:
    """SIGTERM (a CI time-out, `kill`) ends the run like Ctrl-C: workers stopped, what they sent kept and written.
    Returns what puts the previous handler back. Signals can only be handled in the main thread."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    return lambda: signal.signal(signal.SIGTERM, previous)


def run_inline(case_paths: list[Path], sel: Selection, on_event: Callable[[tuple], None]) -> tuple[list[dict], dict]:
    """The same as run() in this process (jobs=1): simpler to debug and profile."""
    records: list[dict] = []
    info: dict = {}

    def emit(msg):
        if msg[0] == "record":
            records.append(msg[1])
        elif msg[0] == "info":
            info.setdefault(msg[1], {}).update(msg[2])
        on_event(msg)

    for name in sel.frameworks:
        run_framework(name, [str(p) for p in case_paths], sel, emit)
        emit(("done", name))
    return records, info
