"""How the run is split into worker processes (pool.plan) and that the split changes nothing but the time."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from itertools import product
from pathlib import Path

import numpy as np
import pytest
from results_factory import load as load_results
from results_factory import outcomes

from conformance.adapters.base import DECLARATIONS
from conformance.app.cli import main
from conformance.corpus import bundled
from conformance.model.names import DTYPES, MODES
from conformance.run import pool, runner
from conformance.run.events import Imported, Info, RecordMade

ROOT = Path(__file__).resolve().parent.parent
COSTS = {"a": {("compiled", "float32"): 400, ("compiled", "float64"): 300, ("compiled", "float16"): 50, ("eager", "float32"): 100},
         "b": {}}



def _declare_costs(monkeypatch, cold) -> None:
    """Every framework's declared costs are `cold(name)` (COLD_SECONDS), with no quick run beside them."""
    monkeypatch.setattr(pool, "cold_seconds", lambda name, cpu=None: cold(name))
    monkeypatch.setattr(pool, "quick_seconds", lambda name, cpu=None: {})
    monkeypatch.setattr(pool, "start_seconds", lambda name, cpu=None: pool.START_S)  # frameworks of the test's own: none declared

def _plan(monkeypatch, frameworks=("a", "b"), dtypes=DTYPES, modes=MODES):
    _declare_costs(monkeypatch, lambda name: COSTS[name])
    return pool.plan(runner.Selection(frameworks, dtypes, ("cpu",), modes))


def test_every_framework_mode_and_dtype_is_in_exactly_one_shard(monkeypatch):
    shards = _plan(monkeypatch)
    covered = [(s.framework, m, d) for s in shards for m in s.modes for d in s.dtypes]
    assert sorted(covered) == sorted(product(("a", "b"), MODES, DTYPES))


def test_only_dtypes_above_the_threshold_get_a_worker_of_their_own(monkeypatch):
    by_name = {s.name: s for s in _plan(monkeypatch)}
    assert by_name["a/compiled/float32"].dtypes == ("float32",) and by_name["a/compiled/float64"].dtypes == ("float64",)
    # float16 (50 s) and the unmeasured rest stay together; eager float32 (100 s) is alone, the rest of eager together
    assert by_name["a/compiled/float16+bfloat16"].cost == 50
    assert by_name["a/eager/float32"].cost == 100 and by_name["a/eager/float16+bfloat16+float64"].cost == 0
    # a framework that declares no costs (little work) runs both modes in one worker: one import instead of two
    assert by_name["b/eager+compiled"].dtypes == DTYPES and by_name["b/eager+compiled"].modes == MODES
    assert not {"b/eager", "b/compiled"} & set(by_name)


def test_modes_share_a_worker_only_when_together_they_stay_small(monkeypatch):
    costs = {"c": {(m, d): 20 for m in MODES for d in DTYPES}}  # 80 s a mode: too much for one worker
    _declare_costs(monkeypatch, lambda name: costs[name])
    assert sorted(s.name for s in pool.plan(runner.Selection(("c",), DTYPES, ("cpu",), MODES))) == ["c/compiled", "c/eager"]
    costs["c"] = {(m, d): 5 for m in MODES for d in DTYPES}  # 20 s a mode, 40 s together
    (merged,) = pool.plan(runner.Selection(("c",), DTYPES, ("cpu",), MODES))
    assert merged.name == "c/eager+compiled" and merged.cost == 40
    assert merged.selection(runner.Selection(("c",), DTYPES, ("cpu",), MODES)).modes == MODES


def test_longest_shards_start_first(monkeypatch):
    costs = [s.cost for s in _plan(monkeypatch)]
    assert costs == sorted(costs, reverse=True) and costs[0] == 400


def test_gpu_shards_come_first_and_shortest_first(monkeypatch):
    """One GPU worker runs at a time: the GPU queue leads (the GPU is never idle while CPU shards run) and its short
    shards go first, so a run stopped at a time budget has finished the most frameworks on the GPU."""
    declared = {"a": {"GPU_COLD_SECONDS": {"eager": 500}}, "c": {}}
    _declare_costs(monkeypatch, lambda name: {"a": COSTS["a"], "c": {}}[name])
    monkeypatch.setattr(pool, "declared", lambda name, attr: declared[name].get(attr, DECLARATIONS[attr][1]))
    shards = pool.plan(runner.Selection(("a", "c"), DTYPES, ("cpu", "gpu"), ("eager",), devices_named=True), [])
    assert [s.name for s in shards[:2]] == ["c/eager/gpu", "a/eager/gpu"] and shards[1].cost == 500
    assert not any(s.on_gpu for s in shards[2:])
    assert pool._next(shards, {}, {s.name: s for s in shards}) == 0


def test_a_narrowed_selection_is_planned_within_it(monkeypatch):
    shards = _plan(monkeypatch, frameworks=("a",), dtypes=("float16", "float32"), modes=("compiled",))
    assert [(s.name, s.dtypes) for s in shards] == [("a/compiled/float32", ("float32",)), ("a/compiled/float16", ("float16",))]


def test_split_workers_write_the_same_records_as_one_process(monkeypatch, tmp_path):
    """numpy made to look slow enough to split per dtype: spawned workers, one per dtype, against the same run inline."""
    cases = str(bundled.cases_dir() / "extreme-logits.yaml")
    inline = main(["run", "--cases", cases, "--frameworks", "numpy", "--jobs", "1", "--out", str(tmp_path / "inline")])
    _declare_costs(monkeypatch, lambda name: {(m, d): 1000 for m in MODES for d in DTYPES})
    assert len(pool.plan(runner.Selection(("numpy",), DTYPES, ("cpu",), MODES))) == 2 * len(DTYPES)
    split = main(["run", "--cases", cases, "--frameworks", "numpy", "--jobs", "2", "--out", str(tmp_path / "split")])
    assert inline == split
    records = outcomes(tmp_path / "split" / "results.json")
    assert records and records == outcomes(tmp_path / "inline" / "results.json")


SLOW_CASES = """suite: slow
description: Large enough that the workers are still busy when the run is stopped.
cases:
""" + "".join(f"""  - id: big-{i}
    description: A wide batch, to keep a worker busy.
    ops: [softmax, log_softmax]
    dtypes: [float32, float64]
    logits: {{generate: normal, shape: [64, 65536], seed: {i}}}
""" for i in range(8))


def _marked(mark: str) -> list[int]:
    """Processes that carry this test's mark in their environment (the run and every worker it spawned)."""
    pids = []
    for env in Path("/proc").glob("[0-9]*/environ"):
        try:
            if f"CONFORMANCE_TEST_MARK={mark}".encode() in env.read_bytes():
                pids.append(int(env.parent.name))
        except OSError:  # gone meanwhile, or not ours to read
            pass
    return pids


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="finds the workers through /proc")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_a_stopped_run_leaves_no_worker_behind(tmp_path, sig):
    (tmp_path / "slow.yaml").write_text(SLOW_CASES)
    mark = uuid.uuid4().hex
    proc = subprocess.Popen([sys.executable, "-m", "conformance.app.cli", "run", "--cases", str(tmp_path / "slow.yaml"), "--frameworks", "numpy",
                             "--jobs", "2", "--out", str(tmp_path / "out")],
                            cwd=ROOT, env={**os.environ, "CONFORMANCE_TEST_MARK": mark}, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    for line in proc.stderr:  # a worker has finished its first case and is on the next
        if "% overall" in line and "(0 records" not in line:  # records have come (the share moves with the clock too)
            break
    workers = [p for p in _marked(mark) if p != proc.pid]
    assert workers, "no worker was running"
    proc.send_signal(sig)
    proc.wait(timeout=60)
    proc.stderr.close()  # an orphaned worker would keep the pipe open
    deadline = time.monotonic() + 15
    while _marked(mark) and time.monotonic() < deadline:
        time.sleep(0.2)
    orphans = _marked(mark)
    for pid in orphans:  # leave nothing running, even when failing
        os.kill(pid, signal.SIGKILL)
    assert not orphans, f"{len(orphans)} worker(s) outlived their run"
    if sig == signal.SIGTERM:  # stopped like Ctrl-C: what the workers had sent is written, marked partial
        doc = load_results(tmp_path / "out" / "results.json")
        assert proc.returncode == 3 and doc["interrupted"] is True and doc["complete"] is False and doc["records"]


def _gpu_plan(monkeypatch, frameworks=("a", "b"), cases=None):
    declared = {"a": {"GPU": True, "DEVICE_ASSERTS": ("gpu",)}, "b": {"GPU": False}}
    _declare_costs(monkeypatch, lambda name: COSTS[name])
    monkeypatch.setattr(pool, "declared", lambda name, attr: declared[name].get(attr, DECLARATIONS[attr][1]))
    monkeypatch.setattr(pool, "accelerator_possible", lambda: True)
    return pool.plan(runner.Selection(frameworks, ("float32",), ("cpu", "gpu"), ("eager",)), cases)


def test_a_gpu_no_device_file_shows_gets_shards_unasked(monkeypatch):
    """macOS (MLX's Metal) and Windows show no device file for a GPU: there the plan gives every GPU path a shard, which
    says itself whether it found a GPU; before, only an NVIDIA driver file did, so MLX never ran on a Mac's GPU unasked."""
    _declare_costs(monkeypatch, lambda name: COSTS[name])
    gpu = {"a": {"GPU": True}, "b": {"GPU": False}}
    monkeypatch.setattr(pool, "declared", lambda name, attr: gpu[name].get(attr, DECLARATIONS[attr][1]))
    monkeypatch.setattr(sys, "platform", "darwin")
    names = {s.name for s in pool.plan(runner.Selection(("a", "b"), ("float32",), ("cpu", "gpu"), ("eager",)))}
    assert {"a/eager", "a/eager/gpu", "b/eager"} == names


def test_a_gpu_gets_shards_of_its_own_and_assert_prone_cases_a_worker_each(monkeypatch):
    from conformance.corpus.cases import load

    cases = load([bundled.cases_dir()])
    by_name = {s.name: s for s in _gpu_plan(monkeypatch, cases=cases)}
    prone = sorted(c.full_id for c in cases if c.labels_out_of_range)
    assert prone and by_name["a/eager"].devices == ("cpu",) and by_name["a/eager/gpu"].devices == ("gpu",)
    assert sorted(by_name["a/eager/gpu"].exclude) == prone
    assert sorted(s.cases[0] for s in by_name.values() if s.cases) == prone  # one GPU worker per assert-prone case
    assert by_name["b/eager"].devices == ("cpu", "gpu") and "b/eager/gpu" not in by_name  # no GPU path: its skip is reported
    assert not by_name["b/eager"].on_gpu  # ... and it never waits for the GPU (seen: NumPy queued behind JAX's GPU shard)
    covered = [(s.framework, d, c.full_id) for s in by_name.values() for d in s.devices for c in cases
               if s.selection(runner.Selection(("a", "b"), ("float32",), ("cpu", "gpu"), ("eager",))).wants_case(c.full_id)]
    assert len(covered) == len(set(covered))  # no case twice on one device


def test_a_kernel_that_aborts_on_a_bad_index_gets_cpu_workers_per_case_in_that_mode_only(monkeypatch):
    """keras-torch compiled: an Inductor bounds check aborts the whole process, so its out-of-range cases must never
    share a worker with the rest of the corpus, and eager (which raises cleanly) keeps one worker. Where the two modes
    are small enough to share a worker, they do: the prone cases then run in both modes in their own workers, instead
    of eager costing an import of its own (a `--quick` run spent 7 s of 215 worker-seconds on that import)."""
    from conformance.corpus.cases import load

    cases = load([bundled.cases_dir()])
    declared = {"k": {"DEVICE_ASSERTS": ("gpu", "cpu/compiled")}}
    costs = {("eager", "float32"): pool.SPLIT_ABOVE_S, ("compiled", "float32"): pool.SPLIT_ABOVE_S}  # too much for one worker
    _declare_costs(monkeypatch, lambda name: costs)
    monkeypatch.setattr(pool, "declared", lambda name, attr: declared[name].get(attr, DECLARATIONS[attr][1]))
    sel = runner.Selection(("k",), ("float32",), ("cpu",), ("eager", "compiled"))
    by_name = {s.name: s for s in pool.plan(sel, cases)}
    prone = sorted(c.full_id for c in cases if c.labels_out_of_range)
    assert sorted(by_name["k/compiled"].exclude) == prone and not by_name["k/eager"].exclude
    alone = sorted(s.cases[0] for s in by_name.values() if s.cases)
    assert alone == prone and all(by_name[f"k/compiled/{cid}"].mode == "compiled" for cid in prone)

    costs.clear()  # small: one worker for both modes, and each prone case alone in both
    shards = pool.plan(sel, cases)
    by_name = {s.name: s for s in shards}
    assert sorted(by_name["k/eager+compiled"].exclude) == prone
    assert sorted(s.cases[0] for s in shards if s.cases) == prone and all(by_name[f"k/eager+compiled/{cid}"].modes == ("eager", "compiled")
                                                                          for cid in prone)
    runs = [(c.full_id, m) for s in shards for m in s.modes for c in cases if s.selection(sel).wants_case(c.full_id)]
    assert sorted(runs) == sorted((c.full_id, m) for c in cases for m in ("eager", "compiled"))  # each once


def _threaded_plan(monkeypatch, cores: int, jobs: int, omp: str | None = None):
    """The plan run() takes on `cores` cores with `jobs` workers, for a framework whose compiled kernels abort on an
    out-of-range index only where they run in a parallel region (PyTorch's Inductor: "cpu/compiled/threaded")."""
    from conformance.corpus.cases import load

    cases = load([bundled.cases_dir()])
    declared = {"k": {"DEVICE_ASSERTS": ("gpu", "cpu/compiled/threaded")}, "b": {}}
    _declare_costs(monkeypatch, lambda name: {})
    monkeypatch.setattr(pool, "declared", lambda name, attr: declared[name].get(attr, DECLARATIONS[attr][1]))
    monkeypatch.setattr(pool.os, "cpu_count", lambda: cores)
    if omp is None:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    else:
        monkeypatch.setenv("OMP_NUM_THREADS", omp)
    sel = runner.Selection(("k", "b"), ("float32",), ("cpu",), ("eager", "compiled"))
    prone = sorted(c.full_id for c in cases if c.labels_out_of_range)
    return pool.plan_for_jobs(sel, cases, jobs, None), prone


def test_a_kernel_that_aborts_only_in_a_parallel_region_shares_its_worker_where_each_worker_has_one_thread(monkeypatch):
    """Inductor parallelises a kernel only with more than one thread, and only there does its bounds check's throw abort
    the process (pytorch/pytorch#195402; test_an_inductor_bounds_check_aborts_only_with_threads shows it): with as many
    workers as cores the out-of-range cases run in their framework's worker (a `--quick` run on 2 cores spent 22 of its
    295 worker-seconds on that case's own worker: an import of Keras and torch, and a cold compile)."""
    shards, prone = _threaded_plan(monkeypatch, cores=2, jobs=2)
    assert prone and not any(s.cases or s.exclude for s in shards)
    assert pool.worker_threads(2, len(shards)) == 1

    for cores, jobs, omp in ((8, 2, None), (2, 1, None), (2, 2, "2")):  # more than one thread a worker: apart again
        shards, prone = _threaded_plan(monkeypatch, cores=cores, jobs=jobs, omp=omp)
        assert sorted(s.cases[0] for s in shards if s.cases) == prone, (cores, jobs, omp)
        assert all(sorted(s.exclude) == prone for s in shards if s.framework == "k" and not s.cases)

    shards, prone = _threaded_plan(monkeypatch, cores=8, jobs=2, omp="1")  # the user's one thread a worker: together
    assert not any(s.cases or s.exclude for s in shards)


def test_worker_threads_is_an_equal_share_of_the_cores_unless_the_user_set_omp_num_threads(monkeypatch):
    monkeypatch.setattr(pool.os, "cpu_count", lambda: 16)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert [pool.worker_threads(jobs, 11) for jobs in (1, 2, 16)] == [16, 8, 1]
    assert pool.worker_threads(16, 4) == 4  # fewer shards than jobs: the cores go to the shards that run
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert pool.worker_threads(16, 11) == 3


def test_a_worker_records_the_threads_it_computed_on(tmp_path, monkeypatch):
    """environment.frameworks.<fw>.threads: what the records were computed on (a reduction splits by the threads)."""
    monkeypatch.setenv("OMP_NUM_THREADS", "3")  # a worker inherits the user's count (pool.worker_threads)
    main(["run", "--frameworks", "numpy", "--case", "published-values/softmax-four-logits", "--out", str(tmp_path / "r")])
    assert load_results(tmp_path / "r" / "results.json")["environment"]["frameworks"]["numpy"]["threads"] == 3


_ABORT_PROBE = """
import sys, torch
torch.set_num_threads(int(sys.argv[1]))
f = torch.compile(lambda x, t: torch.nn.functional.cross_entropy(x, t, reduction="none"), dynamic=True, fullgraph=True)
f(torch.randn(2, 1000, requires_grad=True), torch.tensor([1, 2])).sum().backward()
try:
    f(torch.randn(2, 3, requires_grad=True), torch.tensor([1, 3]))  # the graph compiled on [2, 1000] serves it
except RuntimeError as exc:
    print("raised:", exc)
"""


@pytest.mark.slow
@pytest.mark.parametrize("threads", [1, 2])
def test_an_inductor_bounds_check_aborts_only_with_threads(tmp_path, threads):
    """What "cpu/compiled/threaded" in the torch adapter's DEVICE_ASSERTS rests on, checked against the installed
    PyTorch: a compiled F.cross_entropy given a class index past the classes raises a RuntimeError on one thread, and
    aborts the process (std::terminate from an OpenMP parallel region, SIGABRT) on two. Should a PyTorch release catch
    the throw (pytorch/pytorch#195482), the two-thread case fails here: the declaration's "/threaded" can then go."""
    pytest.importorskip("torch")
    env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "inductor"), "OMP_NUM_THREADS": str(threads)}
    proc = subprocess.run([sys.executable, "-c", _ABORT_PROBE, str(threads)], env=env, capture_output=True, text=True, timeout=600)
    if threads == 1:
        assert proc.returncode == 0 and "raised: " in proc.stdout and "index out of bounds" in proc.stdout, proc.stderr[-2000:]
    else:
        assert proc.returncode == -signal.SIGABRT and "index out of bounds" in proc.stderr, (proc.returncode, proc.stderr[-2000:])


def test_one_gpu_worker_at_a_time(monkeypatch):
    shards = _gpu_plan(monkeypatch, cases=[])
    by_name = {s.name: s for s in shards}
    gpu = [i for i, s in enumerate(shards) if s.on_gpu]
    assert pool._next(shards, {"a/eager/gpu": None}, by_name) not in gpu
    assert pool._next(shards, {}, by_name) == 0


def test_a_second_worker_of_one_compiler_waits_until_the_first_has_compiled():
    """PyTorch's and Keras-on-PyTorch's compiled shards share Inductor's caches under file locks (adapter COMPILER):
    started together they wait on each other; the second starts once a worker of the compiler has answered a compiled
    call (it has built the precompiled header and probed the vector ISA), once the first has run COMPILER_COLD_CAP_S
    without one, or at once where nothing else can start. Eager shards compile nothing and never wait."""
    def shard(framework: str, mode: str, cost: float) -> pool.Shard:
        return pool.Shard(framework, mode, ("float32",), f"{framework}/{mode}", cost)

    pending = [shard("keras-torch", "eager+compiled", 50), shard("jax", "eager+compiled", 20), shard("numpy", "eager", 1)]
    running = {"torch/compiled": None}
    shards = {s.name: s for s in [*pending, shard("torch", "compiled", 60)]}
    past_a_fixed_head_start = {"torch/compiled": 25.0}
    assert pool._next(pending, running, shards, past_a_fixed_head_start) == 1  # JAX instead: torch has compiled nothing yet
    assert pool._next(pending, running, shards, past_a_fixed_head_start, warm={"inductor"}) == 0
    assert pool._next(pending, running, shards, {"torch/compiled": pool.COMPILER_COLD_CAP_S + 1}) == 0
    assert pool._next(pending[:1], running, shards, past_a_fixed_head_start) == 0  # nothing else to start
    assert pool._next([shard("keras-torch", "eager", 5), *pending[1:]], running, shards, past_a_fixed_head_start) == 0


def test_the_pool_looks_nothing_up_when_nothing_is_left_to_start(monkeypatch):
    """The pool asks _next as each worker message arrives; with no shard left to start it must not ask what any
    adapter declares (that read each installed distribution's metadata, 14 ms a message: the parent of a
    one-framework run took 29 s of its 70 s to take the worker's 4,916 records)."""
    def no_lookup(*args):
        raise AssertionError("an adapter's declaration was looked up with nothing to start")

    monkeypatch.setattr(pool, "declared", no_lookup)
    running = pool.Shard("torch", "compiled", ("float32",), "torch/compiled", 60)
    assert pool._next([], {running.name: None}, {running.name: running}, {running.name: 1.0}) is None


def test_the_installed_adapters_are_read_once_per_search_path(monkeypatch, tmp_path):
    """registered() is asked per message of a run: the entry points of the installed distributions are read once
    for a given sys.path, and again when the path changes (a distribution put on it may register an adapter)."""
    import conformance.adapters as adapters

    reads = []

    def counted(group):
        reads.append(group)
        return []

    adapters._entry_point_adapters.cache_clear()
    monkeypatch.setattr(adapters, "entry_points", counted)
    for _ in range(3):
        assert adapters.registered()["numpy"] == "conformance.adapters.numpy"
    assert reads == [adapters.ENTRY_POINT_GROUP]
    monkeypatch.syspath_prepend(str(tmp_path))
    adapters.registered()
    assert len(reads) == 2
    adapters._entry_point_adapters.cache_clear()


def test_the_pool_calls_a_compiler_warm_once_a_worker_of_it_answers_a_compiled_call():
    """What _next waits on comes from the records: a compiled record that ran (not unsupported, not skip) from a
    worker of a compiler makes that compiler warm; an eager record, or a compiled call that nothing ran, does not."""
    from results_factory import record

    shards = [pool.Shard("torch", "eager+compiled", ("float32",), "torch/eager+compiled", 60.0),
              pool.Shard("numpy", "eager+compiled", ("float32",), "numpy/eager+compiled", 1.0)]
    p = pool._Pool(runner.Selection(("torch", "numpy"), ("float32",), ("cpu",), ("eager", "compiled")), [], shards, 2, lambda e: None)
    for name in ("torch/eager+compiled", "numpy/eager+compiled"):
        p.outcome.timing[name] = {"spawned": 0.0}
    for mode, status in (("eager", "pass"), ("compiled", "unsupported"), ("compiled", "skip")):
        p.receive("torch/eager+compiled", RecordMade(record(framework="torch", mode=mode, status=status)))
    assert p.warm == set()
    p.receive("torch/eager+compiled", RecordMade(record(framework="torch", mode="compiled", status="error")))
    assert p.warm == {"inductor"}


def test_a_named_gpu_that_cannot_be_used_is_an_error_not_a_skip(tmp_path):
    res = subprocess.run([sys.executable, "-m", "conformance.app.cli", "run", "--cases", str(bundled.cases_dir() / "published-values.yaml"),
                          "--frameworks", "torch", "--devices", "gpu", "--modes", "eager", "--out", str(tmp_path)],
                         capture_output=True, text=True, cwd=ROOT, timeout=300)
    try:
        import torch
    except ImportError:
        pytest.skip("torch is not installed")
    if torch.cuda.is_available():
        pytest.skip("a GPU is visible here")
    assert res.returncode == 3, res.stderr
    assert "gpu requested but torch cannot use it: torch.cuda.is_available() is False" in res.stderr


def test_the_pool_tells_the_display_when_each_worker_has_imported_its_framework():
    """The display's first measure of this machine's pace: once a worker's framework is imported (its Info arrives),
    the pool says how long that took since it spawned the worker, as the worker's own timing has it (its start-up and
    import phases, which the committed runs' IMPORT_SECONDS add up) and a little more (the pipe)."""
    sel = runner.Selection(("numpy",), ("float32",), ("cpu",), ("eager",))
    told = []
    outcome = pool.run([bundled.cases_dir() / "published-values.yaml"], sel, jobs=1, on_event=told.append, timeout=120)
    (imported,) = [m for m in told if isinstance(m, Imported)]
    (shard,) = outcome.timing.values()
    assert imported.shard == outcome.shards[0] and told.index(imported) > min(i for i, m in enumerate(told) if isinstance(m, Info))
    assert shard["start_s"] + shard["phases"]["import"] <= imported.seconds <= shard["wall_s"]


def test_what_a_framework_says_of_itself_reaches_the_parent_as_plain_json_types():
    """A framework's own types never cross the pipe: PyTorch's version string is a `TorchVersion`, and unpickling it
    made the run's parent import PyTorch (1.5-2.5 s of a core while the workers start, and its Info that much late)."""
    class Version(str):
        pass

    said = runner.plain({"version": Version("2.13.0+cpu"), "flags": {"dtype": np.dtype("float32"), "threads": 2}})
    assert said == {"version": "2.13.0+cpu", "flags": {"dtype": "float32", "threads": 2}} and type(said["version"]) is str
    script = ("import sys; from conformance.corpus import bundled; from conformance.run import pool, runner; "
              "sel = runner.Selection(('torch',), ('float32',), ('cpu',), ('eager',), cases=('published-values/*',)); "
              "pool.run([bundled.cases_dir() / 'published-values.yaml'], sel, jobs=1, on_event=lambda m: None, timeout=120); "
              "print('torch' in sys.modules)")
    try:
        import torch  # noqa: F401
    except ImportError:
        pytest.skip("torch is not installed")
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert res.returncode == 0 and res.stdout.strip().splitlines()[-1] == "False", res.stderr[-2000:]


def test_a_run_records_where_its_time_went_and_the_next_run_plans_from_it(tmp_path):
    """results.json carries each worker's wall time and phases, whose parts add up to no more than the whole; the costs
    kept in the compile cache are per unit of work, and a later plan on this CPU uses them instead of COLD_SECONDS."""
    from conformance.corpus.cases import load
    from conformance.run import shard_costs

    cache, cases_file = tmp_path / "cache", bundled.cases_dir() / "published-values.yaml"
    assert main(["run", "--cases", str(cases_file), "--frameworks", "numpy", "--modes", "eager", "--compile-cache", str(cache),
                 "--out", str(tmp_path / "out")]) == 0
    doc = load_results(tmp_path / "out" / "results.json")
    (shard,) = doc["timing"].values()
    assert shard["framework"] == "numpy" and shard["wall_s"] > 0 and shard["start_s"] >= 0
    assert set(shard["phases"]) >= {"import", "cases", "inputs", "oracle", "framework", "judge", "send"}
    assert shard["start_s"] + sum(shard["phases"].values()) <= shard["wall_s"] + 0.05  # the parts never exceed the whole
    cases = load([cases_file])
    sel = runner.Selection(("numpy",), DTYPES, ("cpu",), ("eager",))
    assert sum(shard["units_by_dtype"].values()) == runner.units(cases, sel)
    kept = shard_costs.load(cache, doc["environment"]["cpu"])
    assert set(kept) == {f"numpy/eager/{d}" for d in shard["units_by_dtype"]}
    assert not shard_costs.load(cache, "another CPU")  # costs belong to the machine that measured them
    # the display expects a worker's start-up as this machine took it, not as the adapter declares it
    began = shard_costs.starts(cache, doc["environment"]["cpu"])
    beyond = shard["start_s"] + shard["wall_s"] - sum(shard["by_mode"].values())  # its seconds beyond its modes'
    assert began == {"numpy": round(beyond, 2)} and not shard_costs.starts(cache, "another CPU")
    assert began["numpy"] >= shard["start_s"] + shard["phases"]["import"] + shard["phases"]["cases"] - 0.01
    shards = pool.plan(runner.Selection(("numpy",), DTYPES, ("cpu",), ("eager",), str(cache)), load([cases_file]))
    assert pool.plan_event(shards, 2, began).costs == tuple((s.name, s.cost + began["numpy"]) for s in shards)
    assert pool.plan_event(shards, 2, {}).costs == tuple((s.name, s.cost + pool.start_seconds("numpy")) for s in shards)
    # and its import as this machine took it, beside the plan's costs measured here; else as the adapter declares it
    ready = shard_costs.imports(cache, doc["environment"]["cpu"])
    assert ready == {"numpy": round(shard["start_s"] + shard["phases"]["import"], 2)} and not shard_costs.imports(cache, "another CPU")
    assert pool.plan_event(shards, 2, began, imports=ready).imports == tuple((s.name, ready["numpy"]) for s in shards)
    assert pool.plan_event(shards, 2, {}).imports == tuple((s.name, pool.import_seconds("numpy")) for s in shards)
    # a smaller run (one case) leaves the larger run's figures alone; a run as large replaces them
    one = load([cases_file])[0].full_id
    assert main(["run", "--cases", str(cases_file), "--case", one, "--frameworks", "numpy", "--modes", "eager",
                 "--compile-cache", str(cache), "--out", str(tmp_path / "one")]) == 0
    assert shard_costs.load(cache, doc["environment"]["cpu"]) == kept
    fake = {"s": {"framework": "numpy", "wall_s": 1.0, "by_mode": {"eager/float32": 9.0}, "units_by_dtype": {"float32": 99}}}
    shard_costs.remember(cache, doc["environment"]["cpu"], fake)
    assert shard_costs.load(cache, doc["environment"]["cpu"])["numpy/eager/float32"] == {"seconds": 9.0, "units": 99, "warm": True}
    assert set(e["warm"] for e in kept.values()) == {False}  # the first run in this cache measured it cold
    assert set(e["naive"] for e in kept.values()) == {True}  # with the naive formulas, as `run` has them by default
    # per unit as the planner counts them (every op of the cases; the worker counts those NumPy offers)
    assert all(kept[f"numpy/eager/{d}"]["planned"] == runner.units(cases, runner.Selection(("numpy",), (d,), ("cpu",), ("eager",)))
               for d in shard["units_by_dtype"])
    # a plan from measured costs: a dtype that took 100 s a unit gets a worker of its own, the others share one
    (cache / shard_costs.FILE).write_text(json.dumps({"cpu": doc["environment"]["cpu"], "entries": {
        "numpy/eager/float32": {"seconds": 100.0, "units": 1}, "numpy/eager/float64": {"seconds": 0.01, "units": 1}}}))
    planned = pool.plan(runner.Selection(("numpy",), ("float32", "float64"), ("cpu",), ("eager",), str(cache)), cases)
    assert sorted(s.dtypes for s in planned) == [("float32",), ("float64",)]
    by_dtypes = {s.dtypes: s.cost for s in planned}
    assert by_dtypes[("float32",)] == pytest.approx(100.0 * runner.units(cases, runner.Selection(("numpy",), ("float32",), ("cpu",), ("eager",))))



def test_kept_costs_that_are_not_finite_numbers_are_ignored(tmp_path):
    """The cache's costs file is read back with JSON, which takes Infinity and NaN: neither may plan a run (a plan of
    "about inf s" would leave the display without a share done), nor a negative start-up."""
    from conformance.run import shard_costs

    (tmp_path / shard_costs.FILE).write_text('{"cpu": "c", "entries": {"numpy/eager/float32": {"seconds": Infinity, "units": 3}, '
                                              '"numpy/eager/float64": {"seconds": 1.0, "units": 2}}, '
                                              '"starts": {"numpy": Infinity, "jax": NaN, "torch": -1, "tinygrad": 0.5}}')
    assert shard_costs.load(tmp_path, "c") == {"numpy/eager/float64": {"seconds": 1.0, "units": 2}}
    assert shard_costs.starts(tmp_path, "c") == {"tinygrad": 0.5}

def test_a_record_is_what_reading_a_results_file_accepts(tmp_path):
    """One definition: what the runner builds (Record.to_json) is what results.read checks, and a field of the wrong
    type, a missing verdict field, a field no record has, or an unknown status is refused."""
    from conformance.model.record import Record
    from conformance.run.results import SCHEMA, ResultsError, read, write

    good = Record(case="f/c", op="softmax", quantity="value", dtype="float32", framework="numpy", impl="scipy.special.softmax",
                  mode="eager", device="cpu", status="pass", behaviour="finite", max_abs_err=0.0, tol_ratio=0.5, size=4,
                  impl_id="numpy/scipy/softmax", silent=False).to_json()
    assert "detail" not in good and good["silent"] is False and good["known"] is None
    write({"schema": SCHEMA, "records": [good]}, tmp_path / "ok.json")
    assert [r.to_json() for r in read(tmp_path / "ok.json")["records"]] == [good]
    for broken, says in (({**good, "size": "4"}, "field 'size' is str"), ({**good, "naive": 1}, "field 'naive' is int"),
                         ({k: v for k, v in good.items() if k != "behaviour"}, "lacks behaviour"), ({**good, "status": "ok"}, "status 'ok'"),
                         ({**good, "note": "added in passing"}, "field.s. a record does not have: 'note'")):
        write({"schema": SCHEMA, "records": [broken]}, tmp_path / "bad.json")
        with pytest.raises(ResultsError, match=says):
            read(tmp_path / "bad.json")


def test_static_shape_doors_run_compiled_only_on_the_suites_chosen_for_them(monkeypatch):
    """torch.compile(dynamic=False) is what a fixed-shape training loop gets; its doors exist only in compiled mode
    and only on the shape suites (adapters/torch.py, STATIC_SUITES), and compile a graph per input shape."""
    from conformance.corpus.cases import load
    from conformance.run.api import judge_case
    from conformance.run.runner import Selection

    torch_adapter = pytest.importorskip("conformance.adapters.torch")
    pytest.importorskip("torch")
    torch_adapter.load(None)
    static = [i for i in torch_adapter.implementations() if i.static_shapes]
    assert static and all(i.id.startswith("torch/static/") and i.modes == ("compiled",) for i in static)
    shapes = next(c for c in load([bundled.cases_dir() / "shapes.yaml"]) if c.id == "two-classes")
    other = next(c for c in load([bundled.cases_dir() / "published-values.yaml"]) if "softmax" in c.ops)
    compiled = []
    real = torch_adapter.torch.compile
    monkeypatch.setattr(torch_adapter.torch, "compile", lambda f, **kw: compiled.append(kw["dynamic"]) or real(f, **kw))
    sel = Selection(("torch",), ("float32",), ("cpu",), ("eager", "compiled"), impls=("torch/static/softmax", "torch/softmax"))
    on_shapes = judge_case(torch_adapter, shapes, sel, ["cpu"])
    assert {(r["impl_id"], r["mode"]) for r in on_shapes} == {("torch/softmax", "eager"), ("torch/softmax", "compiled"),
                                                             ("torch/static/softmax", "compiled")}
    assert all(r["status"] == "pass" for r in on_shapes), [r["detail"] for r in on_shapes if r["status"] != "pass"]
    assert sorted(compiled) == [False, True]  # the dynamic door's graph and the static door's graph, one each
    assert {r["impl_id"] for r in judge_case(torch_adapter, other, sel, ["cpu"])} == {"torch/softmax"}
