"""The worker processes of a run: the work split into shards, each a spawned process (so no framework state leaks
into another, and a crash in one framework's native code loses only that shard's remaining records): one per
(framework, mode), and where that would be long, one per dtype (see `plan`). Records stream back to the parent as
they are made, which draws the progress display and keeps everything already computed if the run is interrupted.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import itertools
import multiprocessing as mp
import os
import pickle
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection, wait
from pathlib import Path

from ..adapters import cold_seconds, declared, declared_on, own_fraction, quick_seconds, warm_fraction
from ..adapters.catalogue import accelerator_possible
from ..corpus import bundled
from ..corpus.cases import Case, load
from ..model.record import Record
from ..model.status import Status
from . import shard_costs
from .balance import partition, spread
from .config import WorkerConfig
from .defaults import DEFAULT_TIMEOUT_S as DEFAULT_TIMEOUT_S  # re-exported: the api and the command line read it here
from .environment import cpu_class, cpu_model, omp_threads
from .events import (
    CallBegun,
    CaseBegun,
    Crash,
    Done,
    EnvironmentFault,
    Event,
    Fatal,
    Imported,
    Info,
    Lost,
    Plan,
    RecordMade,
    ShardProgress,
    Started,
    Tick,
    TimingOf,
    resumed_name,
)
from .runner import EnvironmentFailure, FrameworkBroken, Selection, crash_records, run_framework, units
from .spawned import worker as spawned_worker

# Where a worker sends its stdout and stderr (the frameworks' log lines); unset: the terminal.


@dataclass(frozen=True)
class Shard:
    """One worker process's share of the run: a framework in one mode (or, for little work, in every mode: "eager+
    compiled"), for some of the selected dtypes, on some devices, and (for assert-prone cases) some of the cases."""
    framework: str
    mode: str  # one mode, or several joined by "+"
    dtypes: tuple[str, ...]
    name: str  # for the progress display: framework/mode, plus the dtypes where the pair was split
    cost: float  # estimated seconds (COLD_SECONDS of the adapter), for the order
    devices: tuple[str, ...] = ("cpu",)
    cases: tuple[str, ...] = ()  # only these case ids (empty: the selection's)
    exclude: tuple[str, ...] = ()  # not these (they have shards of their own)
    skip_calls: tuple[tuple[str, str, str, str, str], ...] = ()  # calls a worker of this shard made or died in (a resumed shard)
    resumed: int = 0  # how many times a worker of this shard died and the rest went to a new one

    @property
    def on_gpu(self) -> bool:
        """Whether this worker uses the GPU: plan() gives the GPU shards that device alone. A framework with no GPU
        path keeps "gpu" among its CPU shard's devices, to say it has none, and never waits for the GPU."""
        return self.devices == ("gpu",)

    @property
    def modes(self) -> tuple[str, ...]:
        return tuple(self.mode.split("+"))

    def selection(self, sel: Selection) -> Selection:
        return replace(sel, dtypes=self.dtypes, modes=self.modes, devices=self.devices, cases=self.cases or sel.cases,
                       exclude=sel.exclude + self.exclude, skip_calls=sel.skip_calls + self.skip_calls)


# A dtype whose cold run is estimated above this many seconds gets a worker of its own. Programs never cross
# dtypes (a compiled graph or program is specialised to one), so a dtype split compiles nothing twice; it
# lets the cores share a framework's long cold compile instead of one core doing it alone while the others idle.
# Below it, a worker's start-up (importing the framework, a few seconds) is not worth paying again; for the same
# reason a framework's modes share one worker where together they stay below it (a warm run, a few case files).
SPLIT_ABOVE_S = 60.0


# What another worker costs before its first case: the interpreter, the framework's import and its adapter (a few
# seconds each, more for the largest frameworks). The planner charges it to every piece it splits off.
START_S = 6.0


def start_seconds(framework: str, cpu: str | None = None) -> float:
    """What a worker of `framework` costs beyond its cases' seconds, as the shards' order and the display count it:
    the adapter's measured START_SECONDS on this class of CPU (adapters.declared_on; 1.7-10.7 s across the ten
    bundled frameworks on the reference CPU, 0.9-5.3 s on the Xeon), else START_S. Splitting and merging keep START_S
    for every piece (each pays for more than its import: a compiler's header, a cold first graph); the time left
    would be a minute over in a two-minute run if every small framework's worker cost 6 s."""
    declared_s = _declared_seconds(framework, "START_SECONDS", cpu)
    return START_S if declared_s is None else declared_s


def import_seconds(framework: str, cpu: str | None = None) -> float | None:
    """The seconds from a worker's spawn to its framework imported that the adapter measured on this class of CPU
    (IMPORT_SECONDS: 0.6-9.7 s across the ten bundled frameworks on the reference CPU), else None. On a CPU of the
    same class, a slow day shows in the imports as in the work (13 cold quick runs on a Xeon that took 1.32-1.56 times
    its class's median: per framework, the median import 1.4-1.6 times the declared, the median work 1.3-1.5 times)."""
    return _declared_seconds(framework, "IMPORT_SECONDS", cpu)


def _declared_seconds(framework: str, name: str, cpu: str | None) -> float | None:
    """One of the adapter's declared numbers of seconds (base.SECONDS) on this class of CPU, else None."""
    declared_s = declared_on(framework, name, cpu)
    return None if declared_s is None else float(declared_s)


@functools.cache
def _bundled_corpus() -> tuple[Case, ...]:
    """The bundled corpus, read once per process (package data: it cannot change while the process runs)."""
    return tuple(load([bundled.cases_dir()]))


def _share_of_corpus(cases: list[Case] | None, sel: Selection) -> float:
    """The adapters' COLD_SECONDS are for the whole bundled corpus: a run of a few cases costs that share of them, so
    that it is not split into a worker per dtype (each importing its framework again) for seconds of work."""
    if not cases:
        return 1.0
    everything = replace(sel, cases=(), impls=(), ops=(), quantities=(), exclude=())
    total = units(list(_bundled_corpus()), everything)
    return min(1.0, units(cases, sel) / total) if total else 1.0


def gpu_visible() -> bool:
    """Whether this machine has an NVIDIA GPU driver loaded, found without importing any framework: where a CUDA-only
    framework (GPU_ONLY) has anything to say. Whether any framework could see a GPU is accelerator_possible()."""
    return Path("/proc/driver/nvidia/gpus").is_dir() or Path("/dev/nvidia0").exists()


def worker_threads(jobs: int, shards: int) -> int:
    """The threads each worker of a run computes on: $OMP_NUM_THREADS where the user set it (a worker inherits it),
    else an equal share of the cores between the workers that run at once (no oversubscription)."""
    return omp_threads() or max(1, (os.cpu_count() or 1) // max(1, min(jobs, shards)))


def _assert_prone(framework: str, device: str, mode: str, cases: list[Case] | None, sel: Selection,
                  threaded: bool = True) -> tuple[str, ...]:
    """The selected cases with an out-of-range class index, where the adapter declares (DEVICE_ASSERTS: "gpu",
    "cpu/compiled" for one mode, "cpu/compiled/threaded" for one mode where a worker computes on more than one
    thread: `threaded`) that such an index can poison or abort the process on this device and mode."""
    if not cases:
        return ()
    poisoned = declared(framework, "DEVICE_ASSERTS")
    pairs = {device, f"{device}/{mode}", *([f"{device}/{mode}/threaded"] if threaded else [])}
    if not pairs & set(poisoned):
        return ()
    return tuple(c.full_id for c in cases if c.labels_out_of_range and sel.wants_case(c.full_id))


def _costs(framework: str, sel: Selection, cases: list[Case] | None, share: float, measured: dict,
           cpu: str | None) -> dict[tuple[str, str], float]:
    """Estimated seconds per (mode, dtype): this machine's last measured seconds per unit of work times the units this
    run takes (shard_costs; a fraction of them where that run compiled what this one runs: WARM_FRACTION), else the
    adapter's declared seconds on this class of CPU for the run's share of the corpus (_declared); either turned into
    a run with or without the naive formulas, as this one is (_naive_factor)."""
    out = {}
    for mode, dtype in itertools.product(sel.modes, sel.dtypes):
        rate = shard_costs.per_unit(measured, framework, mode, dtype)
        if rate is not None and cases:
            n = units(cases, replace(sel, modes=(mode,), dtypes=(dtype,)))
            warmed = shard_costs.warmed_since(measured, framework, mode, dtype, n)
            naive = _naive_factor(framework, mode, shard_costs.with_naive(measured, framework, mode, dtype), sel.naive, cpu)
            out[(mode, dtype)] = rate * n * (warm_fraction(framework, mode, cpu) if warmed else 1.0) * naive
        else:
            out[(mode, dtype)] = _declared(framework, mode, dtype, share, sel.naive, cpu)
    return out


def _naive_factor(framework: str, mode: str, measured_with: bool | None, wanted: bool, cpu: str | None = None) -> float:
    """What seconds measured with the naive formulas (`measured_with`), or without them, come to in a run that wants
    them or not: the adapter's OWN_FRACTION one way, its inverse the other (a framework's naive formulas took up to
    40% of its seconds: leaving them out, as CI's gate run does, made a plan of 2,876 s end in 2,162-2,646 s, and its
    fastest shards, ending first, set a pace the rest did not keep). None: a kept figure from before its file said
    which, taken as it is."""
    if measured_with is None or measured_with == wanted:
        return 1.0
    own = own_fraction(framework, mode, cpu)
    return 1.0 if own <= 0.0 else own if measured_with else 1.0 / own


def _declared(framework: str, mode: str, dtype: str, share: float, naive: bool, cpu: str | None = None) -> float:
    """A mode and dtype's seconds for `share` of the corpus's units, from the two cold runs an adapter declares: the
    whole corpus (COLD_SECONDS, with the naive formulas) and, in the quick dtypes, `run --quick` (QUICK_SECONDS,
    without them), each first turned into a run with or without them as `naive` says. A run's first programs cost
    far more than its later ones (a compiler's first use, a kernel per new shape), so the cost is not proportional to
    the units: between the two measured points it is interpolated, below the quick one it is that run's seconds
    scaled down. Without a quick figure, the cold run's seconds scaled by the share."""
    cold = float(cold_seconds(framework, cpu).get((mode, dtype), 0.0)) * _naive_factor(framework, mode, True, naive, cpu)
    quick = quick_seconds(framework, cpu).get(mode) if dtype in bundled.QUICK_DTYPES else None
    at = _quick_share() if quick is not None else 0.0  # the bundled corpus is read only where a quick figure is used
    if not 0.0 < at < 1.0:
        return cold * share
    quick *= _naive_factor(framework, mode, False, naive, cpu)
    if share <= at:
        return quick * share / at
    return quick + (cold - quick) * (share - at) / (1.0 - at)


@functools.cache
def _quick_share() -> float:
    """The quick selection's share of the bundled corpus's units in its dtypes (where QUICK_SECONDS were measured)."""
    quick = Selection((), bundled.QUICK_DTYPES, ("cpu",), ("eager",), cases=bundled.QUICK_CASES, quantities=bundled.QUICK_QUANTITIES)
    return _share_of_corpus(list(_bundled_corpus()), quick)


def plan(sel: Selection, cases: list[Case] | None = None, workers: int | None = None, measured: dict | None = None,
         threaded: bool = True, cpu: str | None = None) -> list[Shard]:
    """Every (framework, mode, dtype, device) of the selection in exactly one shard, CPU shards longest first (so that
    no long shard starts last and the workers end together). On a GPU a framework gets one shard per mode, run one at a
    time (run() allows one GPU worker at once: they share the device's memory). Where an out-of-range class index
    poisons or aborts the process (adapter DEVICE_ASSERTS), each such case of `cases` gets a worker of its own, so a
    poisoned context costs only that case's records and the other shards never meet the bad index.

    With `workers` (and `cases`), a CPU shard much longer than the others is split by its cases while that shortens
    the planned run on that many workers (balance.spread). `measured`: the seconds per unit to plan from (default: what
    the last run on this machine measured, shard_costs; {} for the adapters' declared costs alone). `threaded`: the
    CPU workers compute on more than one thread (worker_threads), where some kernels abort on such an index
    ("cpu/compiled/threaded"); run() plans without it where each worker gets one thread. `cpu`: the class of CPU whose
    declared costs to plan from (environment.cpu_class; None: the adapters' own, measured on base.REFERENCE_CPU)."""
    shards = []
    gpu_wanted = "gpu" in sel.devices
    share = _share_of_corpus(cases, sel)
    if measured is None:
        measured = _measured_here(sel, cases)
    for framework in sel.frameworks:
        costs = _costs(framework, sel, cases, share, measured, cpu)
        # GPU shards where a GPU may be there (or one was asked for): elsewhere they would only import the framework
        # again to say there is none, which the CPU shard says anyway
        has_gpu = gpu_wanted and declared(framework, "GPU") and (sel.devices_named or accelerator_possible())
        cpu_devices = tuple(d for d in sel.devices if d != "gpu") if has_gpu else sel.devices
        gpu_costs = declared(framework, "GPU_COLD_SECONDS") if has_gpu else {}
        if cpu_devices:
            shards += _cpu_shards(framework, sel, cases, costs, cpu_devices, threaded, start_seconds(framework, cpu))
        for mode in sel.modes:
            cost = {d: float(costs.get((mode, d), 0.0)) for d in sel.dtypes}
            if has_gpu:
                prone = _assert_prone(framework, "gpu", mode, cases, sel)
                gpu_cost = float(gpu_costs.get(mode, sum(cost.values()))) * share
                shards.append(Shard(framework, mode, sel.dtypes, f"{framework}/{mode}/gpu", gpu_cost, ("gpu",), exclude=prone))
                shards += [Shard(framework, mode, sel.dtypes, f"{framework}/{mode}/gpu/{cid}", 0.0, ("gpu",), cases=(cid,)) for cid in prone]
    # GPU shards run one at a time, so their order changes no total: shortest first, ahead of the CPU shards, so the
    # GPU is never idle and a run stopped at a time budget has finished the most frameworks on it
    gpu = sorted((s for s in shards if s.on_gpu), key=lambda s: s.cost)
    on_cpu = [s for s in shards if not s.on_gpu]
    if workers and cases:
        on_cpu = _named_parts(spread(on_cpu, lambda s: s.cost + START_S, lambda s: _halves(s, sel, cases), workers))
    # longest first with its start-up: a one-case worker of a slow import (6.5 s before its 2 s case) is longer than
    # a whole framework that imports in 0.5 s, and put after it, it ended a quick run alone
    return gpu + sorted(on_cpu, key=lambda s: -(s.cost + start_seconds(s.framework, cpu)))


def _measured_here(sel: Selection, cases: list[Case] | None) -> dict[str, dict]:
    """What the last runs on this CPU measured in the selection's compile cache (shard_costs), where the run's cases are
    known (the figures are per unit of them)."""
    return shard_costs.load(sel.compile_cache, cpu_model()) if cases else {}


def _halves(shard: Shard, sel: Selection, cases: list[Case]) -> list[Shard] | None:
    """The shard as two shards of about half its work each, cut between its cases (in corpus order, so each half
    keeps neighbouring cases and the programs they share); None for a shard of one case, or one too short for another
    worker's start-up to be worth paying (SPLIT_ABOVE_S, the rule that splits by dtype)."""
    if shard.cost <= SPLIT_ABOVE_S:
        return None
    part = shard.selection(sel)
    mine = [(c.full_id, n) for c in cases if part.wants_case(c.full_id) and (n := units([c], part))]
    if len(mine) < 2:
        return None
    total, done, cut = sum(n for _, n in mine), 0, 1
    for i, (_, n) in enumerate(mine[:-1]):
        done += n
        cut = i + 1
        if done * 2 >= total:
            break
    halves = (mine[:cut], mine[cut:])
    return [replace(shard, name=f"{shard.name}~{k}", cases=tuple(i for i, _ in half), cost=shard.cost * sum(n for _, n in half) / total)
            for k, half in enumerate(halves, 1)]


def _named_parts(shards: list[Shard]) -> list[Shard]:
    """Pieces of one shard renamed "<shard>/part-K-of-N", numbered in corpus order."""
    groups: dict[str, list[Shard]] = {}
    for s in shards:
        groups.setdefault(s.name.split("~", 1)[0], []).append(s)
    out = []
    for base, group in groups.items():
        if len(group) == 1 and "~" not in group[0].name:
            out.append(group[0])
            continue
        group.sort(key=lambda s: s.name)
        out += [replace(s, name=f"{base}/part-{k}-of-{len(group)}") for k, s in enumerate(group, 1)]
    return out


# The workers a machine of a split run is planned for (not its own --jobs: every machine must deal the same shards).
MACHINE_WORKERS = 4


def plan_id(shards: list[Shard]) -> str:
    """A fingerprint of a whole plan: the shards of one run split across machines all carry the same one."""
    text = "\n".join(sorted(f"{s.name}|{','.join(s.cases)}|{','.join(s.exclude)}" for s in shards))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def machine_share(shards: list[Shard], index: int, count: int) -> list[Shard]:
    """Shard `index` of `count` (1-based) of a run split across machines: the plan's shards dealt by cost
    (balance.partition), the same on every machine that plans the same selection from the same declared costs."""
    return partition(shards, lambda s: s.cost + START_S, lambda s: s.name, count)[index - 1]


def _cpu_shards(framework: str, sel: Selection, cases: list[Case] | None, costs: dict, devices: tuple[str, ...],
                threaded: bool, start: float) -> list[Shard]:
    """A framework's CPU shards: per mode, a worker per dtype that costs more than SPLIT_ABOVE_S (in a run of more
    than one dtype) and one for the rest, a worker per assert-prone case; then the modes' "rest" workers merged into
    one where they take the same dtypes and cases and together cost no more than SPLIT_ABOVE_S, or one of them no more
    than the framework's start-up (`start`: each worker imports the framework again)."""
    def name(mode: str, dtypes: tuple[str, ...]) -> str:  # the dtypes are named where the mode was split by them
        return f"{framework}/{mode}" + (f"/{'+'.join(dtypes)}" if dtypes != sel.dtypes else "")

    shards, rests = [], []
    every = units(cases, sel) if cases else 0
    for mode in sel.modes:
        cost = {d: float(costs.get((mode, d), 0.0)) for d in sel.dtypes}
        prone = _assert_prone(framework, "cpu", mode, cases, sel, threaded) if "cpu" in devices else ()
        # a case's worker costs its share of the mode's seconds, by units (0 would put it last and the display at 100%)
        share = {cid: units([c for c in cases if c.full_id == cid], sel) / every for cid in prone} if every else {}
        # a run of one dtype has nothing to split it from: that dtype is the mode's rest, which may share a worker
        split = tuple(d for d in sel.dtypes if cost[d] > SPLIT_ABOVE_S) if len(sel.dtypes) > 1 else ()
        rest = tuple(d for d in sel.dtypes if d not in split)
        shards += [Shard(framework, mode, (d,), name(mode, (d,)), cost[d], devices, exclude=prone) for d in split]
        if rest:
            rests.append(Shard(framework, mode, rest, name(mode, rest), sum(cost[d] for d in rest), devices, exclude=prone))
        shards += [Shard(framework, mode, sel.dtypes, f"{framework}/{mode}/{cid}", sum(cost.values()) * share.get(cid, 0.0), devices,
                         cases=(cid,)) for cid in prone]
    # ... or where one of them costs no more than the framework's start-up: its own worker would import at least as
    # long as it computes (a framework's eager quick run, 4 s beside 59 s compiled, took 14 s alone: its import, and
    # the compiler's header built again for the one eager door that compiles).
    if len(rests) > 1 and len({s.dtypes for s in rests}) == 1 and (sum(s.cost for s in rests) <= SPLIT_ABOVE_S
                                                                   or min(s.cost for s in rests) <= start):
        mode = "+".join(s.mode for s in rests)
        # A case that is assert-prone in one mode only (DEVICE_ASSERTS "cpu/compiled") is left out of the merged worker and run
        # in every merged mode by a worker of its own, rather than costing the other mode an import of its own.
        exclude = tuple(dict.fromkeys(cid for s in rests for cid in s.exclude))
        merged = {s.mode for s in rests}
        alone = {cid: sum(s.cost for s in shards if s.cases == (cid,) and s.mode in merged) for cid in exclude}
        shards = [s for s in shards if not (s.cases and s.mode in merged)]
        shards += [Shard(framework, mode, sel.dtypes, f"{framework}/{mode}/{cid}", alone[cid], devices, cases=(cid,)) for cid in exclude]
        rests = [Shard(framework, mode, rests[0].dtypes, name(mode, rests[0].dtypes), sum(s.cost for s in rests), devices,
                       exclude=exclude)]
    return shards + rests


def _exit_with_parent(parent: int) -> None:
    """A worker whose parent is gone (killed outright, so it could not stop its workers) has nobody to send records
    to: it ends instead of burning the machine's cores for nothing (seen: two orphans computing for 30 minutes)."""
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)
    threading.Thread(target=watch, daemon=True, name="exit-with-parent").start()


def worker_main(q: Connection, shard: Shard, case_paths: list[str], sel: Selection, config: WorkerConfig, threads: int, parent: int) -> None:
    """One shard in its own process (begun by spawned.worker, its output already in the run's log), set up by the
    run's configuration. Messages go through the worker's own pipe, written synchronously: whatever was sent before a
    crash (even SIGKILL) is in the pipe for the parent to read."""
    q.send(Started(time.time()))  # the parent's spawn to here is process start-up (interpreter, fork server, imports)
    _exit_with_parent(parent)
    config.apply()
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(var, str(threads))
    if shard.on_gpu:
        for var, value in declared(shard.framework, "GPU_ENV").items():
            os.environ.setdefault(var, value)
    elif "gpu" in sel.devices and declared(shard.framework, "GPU"):
        os.environ["CUDA_VISIBLE_DEVICES"] = ""  # its GPU shard runs elsewhere: keep this worker off the device's memory
    part = shard.selection(sel)
    try:
        run_framework(shard.framework, case_paths, part, q.send)
    except FrameworkBroken as exc:
        q.send(Fatal(str(exc)))
        return
    except EnvironmentFailure as exc:
        q.send(EnvironmentFault(str(exc)))
        return
    except Exception:
        q.send(Crash(traceback.format_exc(limit=4)))
        return
    q.send(Done())
    _exit_at_once()


def _exit_at_once() -> None:
    """End a worker whose records are all sent without the interpreter's shutdown: the frameworks' exit handlers
    (compile pools, runtimes, thread pools) took 0.1-2.5 s a worker, during which the parent waited to start the next
    shard (13 worker-seconds of a two-minute `run --quick`). Nothing is lost: the records went through the pipe
    synchronously, and the compile caches are written when each program is compiled, not at exit."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(0)


@dataclass
class Outcome:
    """What a run produced: its records, what each framework said about itself, and what did not finish."""
    records: list[Record] = field(default_factory=list)
    info: dict = field(default_factory=dict)  # framework -> version, packages, devices, flags, absent, ...
    lost: list[dict] = field(default_factory=list)  # {"shard", "framework", "mode", "dtypes", "why"} per unfinished shard
    interrupted: bool = False
    environment: str | None = None  # the machine failed a framework's write (a full disk): the run stopped, exit 4
    timing: dict = field(default_factory=dict)  # shard -> wall_s, start_s and the worker's Timing (phases, by_dtype)
    shards: list[str] = field(default_factory=list)  # the shards this run was given
    plan_id: str = ""  # the whole plan's fingerprint (balance across machines: every machine's is the same)

    @property
    def complete(self) -> bool:
        return not self.lost and not self.interrupted and self.environment is None

    def take(self, msg: Event) -> None:
        """Keep what an event carries."""
        if isinstance(msg, RecordMade):
            self.records.append(msg.record)
        elif isinstance(msg, Info):
            self.info.setdefault(msg.framework, {}).update(msg.info)

    def lose(self, shard: Shard, why: str) -> None:
        self.lost.append({"shard": shard.name, "framework": shard.framework, "mode": shard.mode,
                          "dtypes": list(shard.dtypes), "why": why})


class _Stop(Exception):
    """The run stops where it is (an environment fault): the workers are stopped and what they sent is kept."""


def _call_of(record: Record) -> tuple[str, str, str, str, str]:
    """The call a record answers, as CallBegun.call names it."""
    return (record.case, record.impl_id, record.dtype, record.mode, record.device)


def _exit_cause(code: int | None) -> str:
    """How a worker ended without saying it was done: the signal that killed it (SIGSEGV, SIGABRT, ...) or its code."""
    if code is not None and code < 0:
        try:
            return f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"worker exited with code {code} (crashed or killed)"


def _call_words(begun: CallBegun) -> str:
    """A framework call as the progress display names it: case, implementation, dtype, mode."""
    return f"{begun.record['case']} {begun.record['impl']} {begun.record['dtype']} {begun.record['mode']}"


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else text


def _compiler(shard: Shard) -> str:
    """The compiler whose on-disk caches the shard's compiled calls share with other adapters' (adapter COMPILER)."""
    return declared(shard.framework, "COMPILER") if "compiled" in shard.modes else ""


# A second shard of a compiler (adapter COMPILER says which adapters share one) waits, while another shard can start
# instead, until a worker of that compiler has answered a compiled call: by then the first has built what they share
# under file locks in the compile cache (the compiler's precompiled header, its vector-ISA probe; a cold first compiled
# call takes 15-23 s after a 5-10 s start). Two such workers started together spent about 19 s of a cold two-minute
# run waiting on each other's locks. A fixed 20 s head start was not enough: started 22-24 s after the first, the
# second framework's quick run took 56-62 s of worker time, against 42-51 s started after 33-39 s. A first worker
# that answers no compiled call within COMPILER_COLD_CAP_S (a hang, a long eager mode first) keeps no one waiting.
COMPILER_COLD_CAP_S = 60.0


def _next(pending: list[Shard], running: dict, shards: dict[str, Shard], running_for: dict[str, float] | None = None,
          warm: set[str] | frozenset[str] = frozenset()) -> int | None:
    """The index of the next shard to start: the first pending one, except that one GPU worker runs at a time, and
    that a shard of a compiler (adapter COMPILER) waits while another shard can start where that compiler is not yet
    `warm` (no worker of it has answered a compiled call) and its running shard has run for less than
    COMPILER_COLD_CAP_S (`running_for`: seconds by shard name)."""
    gpu_busy = any(shards[name].on_gpu for name in running)
    startable = [i for i, s in enumerate(pending) if not (s.on_gpu and gpu_busy)]
    if not startable:  # asked as each message arrives: nothing to start, nothing to look up
        return None
    cold = {c for name in running if (c := _compiler(shards[name])) and c not in warm
            and (running_for or {}).get(name, 0.0) < COMPILER_COLD_CAP_S}
    return next((i for i in startable if _compiler(pending[i]) not in cold), startable[0])


class _Pool:
    """The running workers of one run: each a process and the reading end of its pipe, with when it last spoke."""

    def __init__(self, sel: Selection, paths: list[str], shards: list[Shard], jobs: int, on_event: Callable[[Event], None],
                 cases: list[Case] | None = None, config: WorkerConfig = WorkerConfig()):
        self.ctx, self.sel, self.paths, self.jobs, self.on_event = mp.get_context("spawn"), sel, paths, jobs, on_event
        self.config = config
        self.shards = {s.name: s for s in shards}
        self.cases = cases or []
        self.begun: dict[str, list[str]] = {}  # shard -> the cases it has started, in order
        self.calls: dict[str, list[CallBegun]] = {}  # shard -> the framework calls begun in its current case
        self.answered: dict[str, set[str]] = {}  # shard -> the quantities of its last call whose records arrived
        self.resumed: list[Shard] = []  # what the pool starts for the rest of a shard whose worker died
        self.retried: set[tuple] = set()  # the calls a worker died in, run again first in a new worker
        self.kept: dict[tuple, set[str]] = {}  # a call run again -> the quantities whose records arrived before it died
        self.died_between: set[str] = set()  # the cases a worker died in between two calls, gone on in a new worker
        self.running: dict[str, tuple[mp.Process, Connection]] = {}
        self.seen: dict[str, float] = {}
        self.started_at: dict[str, float] = {}  # shard -> when its (latest) worker started, monotonic
        self.outcome = Outcome()
        self.warm: set[str] = set()  # the compilers (adapter COMPILER) one of whose workers has answered a compiled call
        self.threads = worker_threads(jobs, len(shards))

    def start(self, shard: Shard) -> None:
        reader, writer = self.ctx.Pipe(duplex=False)
        call = pickle.dumps((worker_main, shard, self.paths, self.sel, self.config, self.threads, os.getpid()))
        proc = self.ctx.Process(target=spawned_worker, args=(self.config.log, call, writer), daemon=True)
        spawned = time.time()
        proc.start()
        writer.close()  # the worker holds the only writing end: end of file means it is gone
        self.running[shard.name], self.seen[shard.name] = (proc, reader), time.monotonic()
        self.started_at[shard.name] = time.monotonic()
        self.outcome.timing[shard.name] = {"framework": shard.framework, "mode": shard.mode, "dtypes": list(shard.dtypes),
                                           "devices": list(shard.devices), "spawned": spawned}

    def running_for(self) -> dict[str, float]:
        """Seconds each running shard's worker has run."""
        now = time.monotonic()
        return {name: now - self.started_at[name] for name in self.running}

    def stop(self, name: str, why: str, resume: bool = False, hung: bool = False, died: bool = False) -> None:
        """The worker stopped. Where it died or hung inside a framework call (a signal, an abort, an exit, or no answer
        within the timeout: `resume`, `hung`), that call gets `error` records naming the cause for the quantities not
        yet answered, and a new worker takes the rest of the shard, the calls already made skipped: a crash or a hang
        is a finding, and the run completes. Otherwise (stuck or crashed outside a call, an interrupt) the shard is
        lost; with `resume`, the cases it had not begun go to a new worker (once), so a worker that dies costs at most
        the case it was on. A process that `died` (a signal, an exit) between two calls is the damage an earlier call
        left (a kernel that wrote past its buffer): the case it was on goes on in a new worker, its calls already made
        skipped, and is lost only if a worker dies between its calls again."""
        proc, conn = self.running.pop(name)
        if proc.is_alive():
            proc.kill()
        proc.join(timeout=10)
        conn.close()
        shard, begun = self.shards[name], self.begun.get(name, [])
        calls = self.calls.get(name, [])
        answered = self.answered.get(name, set())
        crashed = calls[-1] if resume and calls and not set(calls[-1].quantities) <= answered else None
        if crashed is not None:  # what an earlier worker answered of this call before it died counts as answered here
            answered = answered | self.kept.get(crashed.call, set())
        rest = [c.full_id for c in self.cases if shard.selection(self.sel).wants_case(c.full_id) and c.full_id not in begun]
        if crashed is not None and self.cases and not hung and crashed.call not in self.retried:
            # A native crash may be the damage an earlier call left in the process (a kernel that wrote past its
            # buffer and answered): the call is run again first in a new worker, and is the crash's only when it
            # dies there too. Not a hang (that would cost the timeout twice). The records that arrived before the
            # death (a value, then a crash in the backward) stand; the new worker's records of those are dropped.
            self.retried.add(crashed.call)
            self.kept[crashed.call] = set(answered)
            self._resume(shard, (crashed.record["case"], *rest), tuple(c.call for c in calls[:-1]))
            self.on_event(Lost(name, f"{why} during {_call_words(crashed)}: run again first in a new worker", resumed=True))
            return
        if crashed is not None and self.cases:
            ended = "the call never returned and the watchdog killed the worker" if hung else "the process died during this call"
            again = "" if hung or crashed.call not in self.retried else ", again when it ran first in a fresh worker"
            cause = f"{ended}{again} ({why}); the case's other calls ran in a new worker"
            # a call whose first records arrived before the process died (a value, then an abort in its backward):
            # the crash answers only the quantities still unanswered, so no record is made twice
            for record in crash_records(crashed, cause, hung, answered=answered):
                self.outcome.take(RecordMade(record))
                self.on_event(RecordMade(record))
            self._resume(shard, (crashed.record["case"], *rest), tuple(c.call for c in calls))
            self.on_event(Lost(name, f"{why} during {_call_words(crashed)}: recorded as that call's error; the rest goes on in a new worker",
                               resumed=True))
            return
        if died and begun and self.cases and begun[-1] not in self.died_between:
            self.died_between.add(begun[-1])
            self._resume(shard, (begun[-1], *rest), tuple(c.call for c in calls))
            self.on_event(Lost(name, f"{why} between calls of case {begun[-1]}: its calls not yet made go on in a new worker",
                               resumed=True))
            return
        if begun:
            why = f"{why}, during case {begun[-1]}"
        if resume and rest and self.cases and not shard.resumed:
            self._resume(shard, tuple(rest))
            why = f"{why}; its {len(rest)} case(s) not yet begun run in a new worker"
        self.outcome.lose(shard, why)
        self.on_event(Lost(name, why))

    def _resume(self, shard: Shard, cases: tuple[str, ...], skip_calls: tuple = ()) -> None:
        """The rest of a shard whose worker died, for a new worker: these cases, these calls skipped."""
        again = replace(shard, name=resumed_name(shard.name, shard.resumed + 1), cases=cases,
                        skip_calls=shard.skip_calls + skip_calls, resumed=shard.resumed + 1)
        self.shards[again.name] = again
        self.resumed.append(again)

    def receive(self, name: str, msg: Event) -> None:
        """One event from the worker of shard `name`."""
        if isinstance(msg, Fatal):
            raise FrameworkBroken(msg.why)
        if isinstance(msg, EnvironmentFault):
            self.outcome.environment = msg.why
            raise _Stop
        shard_timing = self.outcome.timing[name]
        if isinstance(msg, Started):
            shard_timing["start_s"] = round(msg.at - shard_timing["spawned"], 3)
        elif isinstance(msg, TimingOf):
            shard_timing.update(msg.timing)
        elif isinstance(msg, CaseBegun):
            self.begun.setdefault(name, []).append(msg.case)
            self.calls[name] = []
        elif isinstance(msg, CallBegun):
            self.calls.setdefault(name, []).append(msg)
            self.answered[name] = set()
        elif isinstance(msg, Crash):
            self.stop(name, f"crashed: {_last_line(msg.traceback)}", resume=True)
        elif isinstance(msg, Done):
            shard_timing["wall_s"] = round(time.time() - shard_timing.pop("spawned"), 3)
            proc, conn = self.running.pop(name)
            proc.join(timeout=10)
            conn.close()
            self.on_event(Done(name))
        else:
            if isinstance(msg, RecordMade):
                self.answered.setdefault(name, set()).add(msg.record.quantity)
                if msg.record.mode == "compiled" and msg.record.status not in (Status.UNSUPPORTED, Status.SKIP):
                    self.warm.add(_compiler(self.shards[name]))  # it compiled something: what it shares is built
                if msg.record.quantity in self.kept.get(_call_of(msg.record), ()):
                    return  # a call run again after a crash: this quantity's record came from the worker that died
            self.outcome.take(msg)
            self.on_event(replace(msg, shard=name) if isinstance(msg, ShardProgress) else msg)  # progress is per shard
            if isinstance(msg, Info) and "absent" not in msg.info and "spawned" in shard_timing:
                self.on_event(Imported(name, time.time() - shard_timing["spawned"]))  # the pace's first measure

    def poll(self, timeout: float) -> None:
        """Read what the workers sent in the next half second; notice the dead and the silent."""
        by_conn = {conn: name for name, (_, conn) in self.running.items()}
        for conn in wait(list(by_conn), timeout=0.5):
            name = by_conn[conn]
            try:
                msg = conn.recv()
            except (EOFError, OSError):  # gone without saying done: a native crash, os._exit, killed
                proc = self.running[name][0]
                proc.join(timeout=10)
                # one that never said it started died importing the core or a framework: its traceback is in the log
                unstarted = "start_s" not in self.outcome.timing[name] and self.config.log
                self.stop(name, _exit_cause(proc.exitcode) + (" before it started (run.log says why)" if unstarted else ""),
                          resume=True, died=True)
                continue
            self.seen[name] = time.monotonic()
            self.receive(name, msg)
        now = time.monotonic()
        for name in [n for n in self.running if now - self.seen[n] > timeout]:
            # inside a framework call, a hang is that call's answer (recorded, the rest resumed); elsewhere the shard is lost
            self.stop(name, f"no progress for {timeout:g} s (hung?); stopped", resume=True, hung=True)


def plan_for_jobs(sel: Selection, cases: list[Case] | None, jobs: int, cpu: str | None) -> list[Shard]:
    """plan() for `jobs` workers on this machine, a CPU of class `cpu`. A worker of one thread runs no kernel in a
    parallel region, where a bounds check's throw aborts the process ("cpu/compiled/threaded"): there such cases share
    their framework's worker. Planned again with them apart where that plan would leave a worker more than one thread
    (from the same measured costs, read once)."""
    measured = _measured_here(sel, cases)
    shards = plan(sel, cases, jobs, measured, threaded=False, cpu=cpu)
    return shards if worker_threads(jobs, len(shards)) == 1 else plan(sel, cases, jobs, measured, cpu=cpu)


def plan_event(pending: list[Shard], jobs: int, starts: dict[str, float], cpu: str | None = None,
               imports: dict[str, float] | None = None) -> Plan:
    """What the display is told of the plan: each shard's seconds with its worker's start-up (the framework's import),
    as this machine measured it last time (shard_costs.starts) or else as the adapter declares it for this class of
    CPU. A worker of one assert-prone case is mostly its start-up; a warm second run, mostly start-ups. And each CPU
    shard's expected seconds to its framework imported, from the same source (`imports`: shard_costs.imports, else
    import_seconds), where there is one: what tells the display this machine's pace before any shard has ended."""
    imports = imports or {}
    expected = ((s.name, imports.get(s.framework, import_seconds(s.framework, cpu))) for s in pending if not s.on_gpu)
    return Plan(tuple((s.name, s.cost + starts.get(s.framework, start_seconds(s.framework, cpu))) for s in pending),
                workers=max(1, min(jobs, len(pending))), imports=tuple((n, e) for n, e in expected if e is not None))


def run(case_paths: list[Path], sel: Selection, jobs: int, on_event: Callable[[Event], None],
        timeout: float = DEFAULT_TIMEOUT_S, cases: list[Case] | None = None, machine: tuple[int, int] | None = None,
        config: WorkerConfig = WorkerConfig()) -> Outcome:
    """Run every shard of `plan(sel)` in worker processes, at most `jobs` at a time.

    `on_event` sees every message for the progress display (kind first; progress, done and lost carry the
    shard's name). A worker that crashes, dies or sends nothing for `timeout` seconds loses only its own
    shard's remaining records; KeyboardInterrupt or SIGTERM stops the workers and keeps what they sent. Both
    make the outcome incomplete. A named framework that cannot be loaded stops the run: FrameworkBroken.

    `machine` (K, N): only this machine's share of a run split across N machines, planned from the declared costs
    alone (every machine must deal the same shards, whatever its own cache or its class of CPU)."""
    cpu = None if machine else cpu_class()  # None: the adapters' own figures, which every machine shares
    if machine:
        whole = plan(sel, cases, MACHINE_WORKERS * machine[1], measured={})
        pending = machine_share(whole, *machine)
    else:
        whole = pending = plan_for_jobs(sel, cases, jobs, cpu)
    pool = _Pool(sel, [str(p) for p in case_paths], pending, jobs, on_event, cases, config)
    pool.outcome.shards = [s.name for s in pending]
    pool.outcome.plan_id = plan_id(whole)
    here = {} if machine else shard_costs.starts(sel.compile_cache, cpu_model())
    imported = {} if machine else shard_costs.imports(sel.compile_cache, cpu_model())
    on_event(plan_event(pending, jobs, here, cpu, imported))
    restore = interrupt_on_sigterm()
    try:
        while pending or pool.running or pool.resumed:
            pending[:0], pool.resumed = pool.resumed, []  # the rest of a dead worker's shard goes first
            while len(pool.running) < jobs and (startable := _next(pending, pool.running, pool.shards, pool.running_for(), pool.warm)) is not None:
                pool.start(pending.pop(startable))
            pool.poll(timeout)
            on_event(Tick(tuple(pool.running)))  # the display's clock: a log line at least every minute
    except (KeyboardInterrupt, _Stop):
        why = "interrupted" if pool.outcome.environment is None else f"stopped: the environment failed ({pool.outcome.environment})"
        pool.outcome.interrupted = pool.outcome.environment is None
        for name in list(pool.running):
            pool.stop(name, why)
        for shard in pending:
            pool.outcome.lose(shard, f"{why} before it started")
    finally:
        for proc, _ in pool.running.values():  # FrameworkBroken: nobody else's work is wanted either
            proc.kill()
        restore()
    return pool.outcome


def interrupt_on_sigterm() -> Callable[[], None]:
    """SIGTERM (a CI time-out, `kill`) ends the run like Ctrl-C: workers stopped, what they sent kept and written.
    Returns what puts the previous handler back. Signals can only be handled in the main thread."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    return lambda: signal.signal(signal.SIGTERM, previous)


def run_inline(case_paths: list[Path], sel: Selection, on_event: Callable[[Event], None]) -> Outcome:
    """The same as run() in this process (jobs=1): simpler to debug and profile. Ctrl-C and SIGTERM keep what
    was made, like run(); there is no time-out (nothing else could run while a framework hangs)."""
    outcome = Outcome()
    remaining = list(sel.frameworks)

    def emit(msg: Event) -> None:
        if isinstance(msg, TimingOf):
            outcome.timing[msg.framework] = {"framework": msg.framework, "mode": "+".join(sel.modes), **msg.timing}
        outcome.take(msg)
        on_event(msg)

    def lose(name: str, why: str) -> None:
        outcome.lost.append({"shard": name, "framework": name, "mode": "+".join(sel.modes), "dtypes": list(sel.dtypes), "why": why})

    restore = interrupt_on_sigterm()
    try:
        while remaining:
            name, started = remaining[0], time.perf_counter()
            try:
                run_framework(name, [str(p) for p in case_paths], sel, emit)
                if name in outcome.timing:
                    outcome.timing[name]["wall_s"] = round(time.perf_counter() - started, 3)
            except FrameworkBroken:
                raise
            except EnvironmentFailure as exc:
                outcome.environment = str(exc)
                for rest in remaining:
                    lose(rest, f"stopped: the environment failed ({exc})")
                break
            except Exception as exc:  # the parallel run loses this worker's shard; here, this framework's rest
                lose(name, f"crashed: {type(exc).__name__}: {_last_line(str(exc)) or ''}")
                on_event(Lost(name, outcome.lost[-1]["why"]))
            else:
                emit(Done(name))
            remaining.pop(0)
    except KeyboardInterrupt:
        outcome.interrupted = True
        for name in remaining:
            lose(name, "interrupted")
    finally:
        restore()
    return outcome
