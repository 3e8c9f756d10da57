"""Running the corpus through the adapters: one record per (case, op, quantity, dtype, impl, mode, device).

Each framework runs in its own worker process (spawned, so no framework state leaks into another and a
crash in one framework's native code loses only that framework's remaining records). Records stream
back to the parent as they are made, which draws the progress display and keeps everything already
computed if the run is interrupted.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import oracle
from .adapters import FrameworkAbsent, Unsupported, load_adapter
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


def _worker(name: str, mode: str, case_paths: list[str], sel: Selection, q, threads: int) -> None:
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(var, str(threads))
    shard = Selection(sel.frameworks, sel.dtypes, sel.devices, (mode,), sel.compile_cache)
    try:
        run_framework(name, case_paths, shard, lambda msg: q.put(_tag(msg, mode)))
    except Exception:
        q.put(("crash", f"{name}/{mode}", traceback.format_exc(limit=4)))
    q.put(("done", f"{name}/{mode}"))


def _tag(msg: tuple, mode: str) -> tuple:
    """Progress and completion are per shard (framework/mode); records and info are per framework."""
    return (msg[0], f"{msg[1]}/{mode}", *msg[2:]) if msg[0] == "progress" else msg


# Longest shards first, so that no long shard starts last. Measured on the 2-core VM, full corpus, cold / warm
# compile cache: torch compiled 470 / 30 s, JAX eager 157 / 50 s, TF compiled 96 / 27 s, JAX compiled 68 / 12 s,
# the other four shards 1-7 s each.
_SHARD_ORDER = {("torch", "compiled"): 0, ("jax", "eager"): 1, ("tensorflow", "compiled"): 2, ("jax", "compiled"): 3}


def run(case_paths: list[Path], sel: Selection, jobs: int, on_event: Callable[[tuple], None]) -> tuple[list[dict], dict]:
    """Run every (framework, mode) shard in parallel worker processes, at most `jobs` at a time.
    Returns (records, per-framework info).

    `on_event` sees every message for the progress display. KeyboardInterrupt stops the workers and returns
    what was already collected, with info["_interrupted"] set."""
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    paths = [str(p) for p in case_paths]
    pending = sorted(((fw, mode) for fw in sel.frameworks for mode in sel.modes), key=lambda s: _SHARD_ORDER.get(s, 9))
    running: dict[str, mp.Process] = {}
    records: list[dict] = []
    info: dict = {}
    threads = max(1, (os.cpu_count() or 1) // max(1, min(jobs, len(pending))))  # equal share, no oversubscription
    try:
        while pending or running:
            while pending and len(running) < jobs:
                name, mode = pending.pop(0)
                proc = ctx.Process(target=_worker, args=(name, mode, paths, sel, q, threads), daemon=True)
                proc.start()
                running[f"{name}/{mode}"] = proc
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
    return records, info


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
