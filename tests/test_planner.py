"""The planner scales with cores: for the measured and the declared costs of the whole corpus, its planned makespan
on N workers is within 1.15x of the work over N (the unsplit plan's worker-seconds, start-ups included: what a split
adds counts against it), for N = 2, 4, 8 and 16. And a run split across machines is dealt the same way on each."""

from __future__ import annotations

import importlib
import json
import statistics
from dataclasses import replace
from pathlib import Path

import pytest

from conformance.adapters import base, cold_seconds, declared, own_fraction, quick_seconds, registered, warm_fraction
from conformance.corpus import bundled
from conformance.corpus.cases import load
from conformance.model.names import DTYPES, MODES
from conformance.run import pool, shard_costs
from conformance.run.balance import makespan, partition, spread
from conformance.run.runner import Selection
from conformance.run.runner import units as runner_units

CASES = load([bundled.cases_dir()])
FRAMEWORKS = tuple(n for n in registered() if cold_seconds(n))  # every framework of a full run on this machine (ten)
COSTS = Path(__file__).resolve().parent / "data" / "costs"


def _measured(run: str = "cold-run-timing.json") -> dict[str, dict]:
    """What a cold run on the CI machine measured (its results file's `timing`): the whole corpus, or `run --quick`."""
    timing = json.loads((COSTS / run).read_text())
    return shard_costs.entries_from({k: v for k, v in timing.items() if isinstance(v, dict)})


# PaddlePaddle's workers died and resumed in the measured full run, so its shards carry no phases to declare.
NOT_FROM_THE_COLD_RUN = ("paddle",)


@pytest.mark.parametrize("name", [n for n in registered() if cold_seconds(n) or quick_seconds(n)])
def test_declared_costs_are_the_measured_runs_seconds(name):
    """The adapters' COLD_SECONDS and QUICK_SECONDS are the two committed runs' seconds, not guesses (rounded)."""
    cold, quick = _measured(), _measured("quick-run-timing.json")
    if name not in NOT_FROM_THE_COLD_RUN:
        assert cold_seconds(name) == {(m, d): round(cold[f"{name}/{m}/{d}"]["seconds"]) for m, d in cold_seconds(name)}
    assert quick_seconds(name) == {m: round(quick[f"{name}/{m}/float32"]["seconds"]) for m in MODES}


def _overhead(shard: dict) -> float:
    """A worker's seconds beyond its modes' (interpreter, import, cases, judging, sending), from its timing's fields."""
    return round(shard["start_s"] + shard["wall_s"] - sum(shard["by_mode"].values()), 1)


@pytest.mark.parametrize("name", [n for n in registered() if quick_seconds(n)])
def test_declared_start_up_is_the_measured_quick_runs(name):
    """START_SECONDS is the committed quick run's overhead of the framework's slowest worker (its seconds beyond its
    modes': the interpreter, the import, the cases, judging, sending), not a guess: what the display expects of a worker
    beyond its modes' seconds. It holds the import and more (the import alone left a cold Xeon's last small shards at
    two to four times their plan). IMPORT_SECONDS is that worker's part up to its framework imported."""
    timing = json.loads((COSTS / "quick-run-timing.json").read_text())
    mine = [s for s in timing.values() if isinstance(s, dict) and s["framework"] == name]
    assert pool.start_seconds(name) == max(_overhead(s) for s in mine)
    assert pool.start_seconds(name) >= max(s["start_s"] + s["phases"]["import"] for s in mine) - 0.05
    assert pool.import_seconds(name) == max(_import(s) for s in mine)  # IMPORT_SECONDS: the spawn to the framework imported


def _import(shard: dict) -> float:
    """A worker's seconds from its spawn to its framework imported: the process start-up and the import phase."""
    return round(shard["start_s"] + shard["phases"]["import"], 1)


# The committed cold quick runs of each CPU class that an adapter declares costs of its own for (ON_CPU).
ON_CPU_RUNS = {"intel-avx512": "quick-run-timing-intel-avx512.json"}


def test_every_cpu_class_declared_has_its_measured_runs():
    """A CPU class is declared (ON_CPU) only with its committed runs, and a class's committed runs are declared by
    every framework they timed: a figure no run backs, or runs no figure uses, is a defect of the data."""
    declared_classes = {cpu for n in registered() for cpu in declared(n, "ON_CPU")}
    assert declared_classes == set(ON_CPU_RUNS) and base.REFERENCE_CPU not in declared_classes
    for cpu, file in ON_CPU_RUNS.items():
        runs = json.loads((COSTS / file).read_text())["runs"]
        timed = {s["framework"] for r in runs.values() for s in r["timing"].values()}
        assert timed == {n for n in registered() if cpu in declared(n, "ON_CPU")}, cpu


@pytest.mark.parametrize("name", [n for n in registered() if declared(n, "ON_CPU")])
def test_declared_costs_of_another_cpu_are_its_measured_runs_medians(name):
    """ON_CPU's QUICK_SECONDS, START_SECONDS and IMPORT_SECONDS are the medians of that CPU class's committed cold
    quick runs (the mode's seconds rounded, the slowest worker's overhead and import), as the module's own are the
    reference run's."""
    for cpu, figures in declared(name, "ON_CPU").items():
        runs = [r["timing"] for r in json.loads((COSTS / ON_CPU_RUNS[cpu]).read_text())["runs"].values()]
        per_mode = {m: statistics.median(shard_costs.entries_from(t)[f"{name}/{m}/float32"]["seconds"] for t in runs) for m in MODES}
        starts = [max(_overhead(s) for s in t.values() if s["framework"] == name) for t in runs]
        imports = [max(s["start_s"] + s["phases"]["import"] for s in t.values() if s["framework"] == name) for t in runs]
        assert figures == {"QUICK_SECONDS": {m: round(v) for m, v in per_mode.items()}, "START_SECONDS": round(statistics.median(starts), 1),
                           "IMPORT_SECONDS": round(statistics.median(imports), 1)}
        assert quick_seconds(name, cpu) == figures["QUICK_SECONDS"] and pool.start_seconds(name, cpu) == figures["START_SECONDS"]
        assert pool.import_seconds(name, cpu) == figures["IMPORT_SECONDS"]
        assert quick_seconds(name) != figures["QUICK_SECONDS"] or pool.start_seconds(name) != figures["START_SECONDS"]


@pytest.mark.parametrize("name", registered())
def test_declared_warm_fraction_is_the_measured_pairs(name):
    """WARM_FRACTION is the committed pair of quick runs in one cache, warm seconds over cold per mode, where the cold run
    spent at least a second in the mode (below that the ratio is noise, and the default 1 costs nothing)."""
    pair = json.loads((COSTS / "quick-run-warm-pair.json").read_text())
    cold, warm = shard_costs.entries_from(pair["cold"]), shard_costs.entries_from(pair["warm"])
    expected = {m: round(warm[k]["seconds"] / cold[k]["seconds"], 2) for m in MODES
                if (k := f"{name}/{m}/float32") in cold and cold[k]["seconds"] >= 1.0}
    assert {m: warm_fraction(name, m) for m in expected} == expected
    assert all(warm_fraction(name, m) == 1.0 for m in MODES if m not in expected)


def test_a_part_measured_cold_plans_the_same_run_again_warm():
    """A figure measured by the first run in a cache plans the next run of as many units at WARM_FRACTION of it (its
    programs are compiled now); a figure measured warm plans as it is; a larger run meets new programs: the cold rate."""
    sel = Selection(("torch",), bundled.QUICK_DTYPES, ("cpu",), ("compiled",), cases=bundled.QUICK_CASES,
                    quantities=bundled.QUICK_QUANTITIES, naive=False)
    n = runner_units(CASES, sel)

    def cost(entry: dict, selection: Selection = sel) -> float:
        return sum(s.cost for s in pool.plan(selection, CASES, 2, {"torch/compiled/float32": entry}, threaded=False))

    assert cost({"seconds": 60.0, "units": n, "warm": False}) == pytest.approx(60.0 * warm_fraction("torch", "compiled"))
    assert cost({"seconds": 60.0, "units": n, "warm": True}) == pytest.approx(60.0)
    assert cost({"seconds": 60.0, "units": n}) == pytest.approx(60.0)  # a file from before the flag: as it was used
    # a worker counts the units of the ops its framework offers, the planner every op: the planner's count decides
    assert cost({"seconds": 60.0, "units": n - 2, "planned": n, "warm": False}) == pytest.approx(60.0 * warm_fraction("torch", "compiled"))
    wider = Selection(("torch",), bundled.QUICK_DTYPES, ("cpu",), ("compiled",), naive=False)
    assert cost({"seconds": 60.0, "units": n, "warm": False}, wider) == pytest.approx(60.0 / n * runner_units(CASES, wider))


def _has_naive_formulas(name: str) -> bool:
    return any(i.naive for i in importlib.import_module(registered()[name]).implementations())


@pytest.mark.parametrize("name", registered())
def test_declared_own_fraction_is_the_measured_pairs(name):
    """OWN_FRACTION is the committed pair of cold full runs on one machine, without the naive formulas (`run
    --no-naive`) and with them: the seconds per mode without over those with, for a framework that has naive formulas
    (one without has none to leave out: 1), where its workers ran whole in both (one that died and went on in a new
    worker did not send its seconds), the run with them spent at least a second in the mode, and the ratio is below 1:
    leaving work out adds none, so a ratio above it is the two runs' noise (the frameworks with no naive formulas,
    whose ratio is noise alone, gave 0.95-1.15 for a mode of over 20 s)."""
    pair = json.loads((COSTS / "full-run-naive-pair.json").read_text())
    runs = {k: {s: t for s, t in pair[k].items() if isinstance(t, dict)} for k in ("without", "with")}

    def seconds(run: str, mode: str) -> float:
        return sum(e["seconds"] for k, e in shard_costs.entries_from(runs[run]).items() if k.startswith(f"{name}/{mode}/"))

    def whole(mode: str) -> bool:
        return not any("/resumed-" in s for run in runs.values() for s, t in run.items() if t["framework"] == name and mode in t["mode"])

    measured = {m: round(seconds("without", m) / seconds("with", m), 2) for m in MODES
                if _has_naive_formulas(name) and whole(m) and seconds("with", m) >= 1.0}
    expected = {m: r for m, r in measured.items() if r < 1.0}
    assert {m: own_fraction(name, m) for m in expected} == expected
    assert all(own_fraction(name, m) == 1.0 for m in MODES if m not in expected)


def test_a_run_without_the_naive_formulas_plans_their_share_of_the_costs():
    """The declared full-run seconds were measured with the naive formulas, the quick run's without: a plan turns each
    into the run it plans (OWN_FRACTION), and so a figure this machine measured, which says which it was."""
    own = own_fraction("torch", "compiled")
    assert own < 1.0  # the premise: PyTorch's compiled naive formulas cost something

    def cost(naive: bool, measured: dict | None = None, cases=None) -> float:
        sel = Selection(("torch",), ("float32",), ("cpu",), ("compiled",), naive=naive)
        return sum(s.cost for s in pool.plan(sel, cases, None, measured or {}, threaded=False))

    cold = cold_seconds("torch")[("compiled", "float32")]
    assert cost(True) == pytest.approx(cold) and cost(False) == pytest.approx(cold * own)
    n = runner_units(CASES, Selection(("torch",), ("float32",), ("cpu",), ("compiled",)))
    for flag, wanted, factor in ((True, False, own), (False, True, 1 / own), (True, True, 1.0), (None, False, 1.0)):
        entry = {"seconds": 100.0, "units": n, "warm": True, **({"naive": flag} if flag is not None else {})}
        assert cost(wanted, {"torch/compiled/float32": entry}, CASES) == pytest.approx(100.0 * factor)
    # the quick run's figure was measured without them: a quick run that asks for them costs more
    quick = Selection(("torch",), bundled.QUICK_DTYPES, ("cpu",), ("compiled",), cases=bundled.QUICK_CASES, quantities=bundled.QUICK_QUANTITIES)
    with_naive = sum(s.cost for s in pool.plan(quick, CASES, None, {}, threaded=False))
    without = sum(s.cost for s in pool.plan(replace(quick, naive=False), CASES, None, {}, threaded=False))
    assert without == pytest.approx(quick_seconds("torch")["compiled"]) and with_naive == pytest.approx(without / own)
    # a framework with no naive formulas plans the same either way
    keras = Selection(("keras-jax",), ("float32",), ("cpu",), ("compiled",))
    assert [s.cost for s in pool.plan(keras, None, None, {})] == [s.cost for s in pool.plan(replace(keras, naive=False), None, None, {})]


def _quick_walls(cpu: str | None) -> float:
    """The committed cold quick runs' wall seconds on a CPU class (None: the reference run), their median."""
    if cpu is None:
        return json.loads((COSTS / "quick-run-timing.json").read_text())["wall_seconds"]
    return statistics.median(r["wall_seconds"] for r in json.loads((COSTS / ON_CPU_RUNS[cpu]).read_text())["runs"].values())


@pytest.mark.parametrize("cpu", [None, *ON_CPU_RUNS])
def test_the_quick_plan_from_declared_costs_is_within_15_percent_of_the_measured_quick_run(cpu):
    """Interpolating between the two declared runs reaches the quick one: its plan on two workers (start-ups included)
    says what the measured run took, on the reference CPU and on each CPU class with costs of its own (the Xeon's runs
    took 61-83 s, against the reference plan's 113 s). Proportional shares of the full run's seconds said 131 s
    against 119 s, and put shards of 10-20 s last as costing 1-4 s."""
    frameworks = tuple(n for n in registered() if quick_seconds(n))
    sel = Selection(frameworks, bundled.QUICK_DTYPES, ("cpu",), MODES, cases=bundled.QUICK_CASES, quantities=bundled.QUICK_QUANTITIES,
                    naive=False)
    shards = pool.plan(sel, CASES, 2, {}, threaded=False, cpu=cpu)  # two workers on two cores: one thread each
    span = makespan([s.cost + pool.start_seconds(s.framework, cpu) for s in shards], 2)
    wall = _quick_walls(cpu)
    assert abs(span - wall) <= 0.15 * wall, (span, wall)


class _Planned(Exception):
    """Raised by the display at the plan, so that a test reads what a run planned without starting a worker."""


def _plan_told(monkeypatch, cpu: str, machine: tuple[int, int] | None, told_of: str = "costs") -> tuple:
    """The plan (shard, seconds) a quick run of PyTorch and JAX tells its display on a CPU of class `cpu`: its costs,
    or the imports it expects (`told_of`)."""
    monkeypatch.setattr(pool, "cpu_class", lambda: cpu)
    told = []

    def display(event):
        told.append(event)
        raise _Planned

    sel = Selection(("torch", "jax"), bundled.QUICK_DTYPES, ("cpu",), MODES, cases=bundled.QUICK_CASES,
                    quantities=bundled.QUICK_QUANTITIES, naive=False)
    with pytest.raises(_Planned):
        pool.run([bundled.cases_dir()], sel, 2, display, cases=CASES, machine=machine)
    return getattr(told[0], told_of)


def test_a_run_plans_from_its_cpu_classs_costs_and_a_split_run_from_the_reference(monkeypatch):
    """A run on a CPU of a class with costs of its own (ON_CPU) plans and shows those; a share of a run split across
    machines plans from the reference costs on every CPU, or two machines of two classes would deal the shards
    differently and some would run twice, others never."""
    here = dict(_plan_told(monkeypatch, "intel-avx512", None))
    assert here["torch/eager+compiled"] == pytest.approx(sum(quick_seconds("torch", "intel-avx512").values()) + pool.start_seconds("torch", "intel-avx512"))
    # the reference CPU's PyTorch costs 79 s and more, which a plan on two workers splits in two
    reference = dict(_plan_told(monkeypatch, base.REFERENCE_CPU, None))
    assert sum(c for n, c in reference.items() if n.startswith("torch/")) > sum(quick_seconds("torch").values()) > here["torch/eager+compiled"]
    assert dict(_plan_told(monkeypatch, "a-cpu-nobody-measured", None)) == dict(_plan_told(monkeypatch, base.REFERENCE_CPU, None))
    for k in (1, 2):
        assert _plan_told(monkeypatch, "intel-avx512", (k, 2)) == _plan_told(monkeypatch, base.REFERENCE_CPU, (k, 2))
    # and the imports it expects are the same class's (the display's first measure of the pace compares with them)
    assert dict(_plan_told(monkeypatch, "intel-avx512", None, "imports")) == {n: pool.import_seconds(n.split("/")[0], "intel-avx512") for n in here}
    assert dict(_plan_told(monkeypatch, base.REFERENCE_CPU, None, "imports")) == {n: pool.import_seconds(n.split("/")[0]) for n in reference}


def test_a_cpus_class_is_its_vendor_and_widest_vector_extension(monkeypatch):
    """What keys ON_CPU: read from /proc/cpuinfo's vendor and flags (Arm's Features), the architecture where no vendor
    is named; every results file records it, so that whoever measures costs on another CPU knows its class."""
    from conformance.run import environment

    for vendor, flags, machine, expected in (("AuthenticAMD", "fpu sse4_2 avx avx2 fma", "x86_64", "amd-avx2"),
                                             ("GenuineIntel", "avx avx2 avx512f avx512bw amx_tile", "x86_64", "intel-avx512"),
                                             (None, "fp asimd sve", "aarch64", "aarch64-sve"),
                                             (None, "", "riscv64", "riscv64-scalar")):
        info = {"vendor_id": vendor, "flags": flags}
        monkeypatch.setattr(environment, "_cpuinfo", lambda *keys, info=info: next((info[k] for k in keys if info.get(k)), None))
        monkeypatch.setattr(environment.platform, "machine", lambda machine=machine: machine)
        assert environment.cpu_class() == expected
        assert environment.environment({})["cpu_class"] == expected  # recorded: what a run here plans from


def test_a_mode_cheaper_than_a_start_up_shares_its_frameworks_worker():
    """PyTorch's quick run costs 6 s eager beside 73 s compiled: over SPLIT_ABOVE_S together, but a worker of its own
    for the eager mode would spend as long on its start-up (6.5 s) as on its work (it took 14 s alone), so the two stay one,
    also where compiled alone is over SPLIT_ABOVE_S: a run of one dtype has no dtype to split it from."""
    frameworks = tuple(n for n in registered() if quick_seconds(n))
    sel = Selection(frameworks, bundled.QUICK_DTYPES, ("cpu",), MODES, cases=bundled.QUICK_CASES, quantities=bundled.QUICK_QUANTITIES,
                    naive=False)
    costs = quick_seconds("torch")
    # the premise, from the measured run: too much for one worker by the first rule, an eager mode below its start-up
    assert sum(costs.values()) > pool.SPLIT_ABOVE_S and min(costs.values()) <= pool.start_seconds("torch")
    assert [s.name for s in pool.plan(sel, CASES, 2, {}, threaded=False) if s.framework == "torch"] == ["torch/eager+compiled"]


def test_a_share_between_the_two_runs_costs_between_their_seconds():
    """At the quick run's share of the corpus the estimate is its seconds, at the whole corpus the cold run's, and it
    grows with the share in between (torch compiled float32: 73 s quick, 595 s cold); each run turned into one with the
    naive formulas or without them first (the quick run was measured without them, the cold one with them)."""
    at = pool._quick_share()
    quick, cold, own = quick_seconds("torch")["compiled"], cold_seconds("torch")[("compiled", "float32")], own_fraction("torch", "compiled")
    for naive, (quick_is, cold_is) in ((False, (quick, cold * own)), (True, (quick / own, cold))):
        estimates = [pool._declared("torch", "compiled", "float32", s, naive) for s in (at / 2, at, (at + 1) / 2, 1.0)]
        assert estimates[1] == pytest.approx(quick_is) and estimates[3] == pytest.approx(cold_is)
        assert estimates == sorted(estimates) and estimates[0] == pytest.approx(quick_is / 2)
    assert pool._declared("torch", "compiled", "float64", 0.5, True) == pytest.approx(cold_seconds("torch")[("compiled", "float64")] / 2)


@pytest.mark.parametrize("costs", ["declared", "measured"])
@pytest.mark.parametrize("workers", [2, 4, 8, 16])
def test_the_planned_makespan_is_within_15_percent_of_the_work_over_n(costs, workers):
    measured = {} if costs == "declared" else _measured()
    assert costs == "declared" or measured
    sel = Selection(FRAMEWORKS, DTYPES, ("cpu",), MODES)
    work, shards, span = _scaling(sel, workers, measured)
    assert span <= 1.15 * work / workers, (span, work / workers, [(s.name, round(s.cost)) for s in shards[:5]])
    # every (framework, mode, dtype) and case is in exactly one shard: splitting lost and doubled nothing
    cover = [(s.framework, m, d, c.full_id) for s in shards for m in s.modes for d in s.dtypes for c in CASES
             if s.selection(sel).wants_case(c.full_id) and c.dtypes and d in c.dtypes]
    assert len(cover) == len(set(cover))


def _scaling(sel: Selection, workers: int, measured: dict) -> tuple[float, list[pool.Shard], float]:
    """The unsplit plan's worker-seconds (start-ups included), the plan for `workers`, and its makespan."""
    work = sum(s.cost + pool.START_S for s in pool.plan(sel, CASES, None, measured))
    shards = pool.plan(sel, CASES, workers, measured)
    return work, shards, makespan([s.cost + pool.START_S for s in shards], workers)


def test_a_split_that_only_adds_start_ups_is_not_taken():
    items = [10.0, 10.0]
    assert spread(items, lambda c: c + 6.0, lambda c: [c / 2, c / 2], 2) == items


def test_makespan_is_list_scheduling_longest_first():
    assert makespan([3, 3, 2, 2, 2], 2) == 7  # 3+2+2 | 3+2
    assert makespan([5], 4) == 5


def test_partition_is_deterministic_and_balanced():
    items = [("a", 5.0), ("b", 5.0), ("c", 4.0), ("d", 3.0), ("e", 3.0)]
    bins = partition(items, lambda i: i[1], lambda i: i[0], 2)
    assert bins == partition(list(reversed(items)), lambda i: i[1], lambda i: i[0], 2)
    # longest first, each to the lightest bin (ties: the lowest): a|b, c to the first (both 5: the lowest), d and e to the second
    assert [[n for n, _ in b] for b in bins] == [["a", "c"], ["b", "d", "e"]]


if __name__ == "__main__":  # docs/performance.md's scaling table: python tests/test_planner.py
    print("| workers | shards | planned makespan | work / N | ratio | longest shard |\n| --- | --- | --- | --- | --- | --- |")
    for n in (2, 4, 8, 16):
        total, plan, span = _scaling(Selection(FRAMEWORKS, DTYPES, ("cpu",), MODES), n, {})
        longest = max(s.cost + pool.START_S for s in plan)
        print(f"| {n} | {len(plan)} | {span:,.0f} s | {total / n:,.0f} s | {span / (total / n):.3f} | {longest:,.0f} s |")
