"""The public doors the adapters claim to cover: aliases are what they say, each door is its own implementation."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_tf_math_aliases_are_the_same_functions_as_tf_nn():
    """The README and the labels say tf.math.softmax is tf.nn.softmax: one kernel, so one implementation."""
    tf = pytest.importorskip("tensorflow")
    assert tf.math.softmax is tf.nn.softmax and tf.math.log_softmax is tf.nn.log_softmax


def test_torch_doors_are_distinct_implementations():
    torch_adapter = pytest.importorskip("conformance.adapters.torch")
    pytest.importorskip("torch")
    torch_adapter.load(None)
    ids = {i.id for i in torch_adapter.implementations()}
    assert {"torch/functional/softmax", "torch/special/softmax", "torch/special/log_softmax", "torch/CrossEntropyLoss",
            "torch/sparse/CrossEntropyLoss", "torch/nll_loss/log_softmax"} <= ids


def test_keras_backends_are_one_per_process():
    """KERAS_BACKEND is read at the first import: a worker for another backend refuses to load in this process
    rather than running Keras on the wrong backend under the wrong name."""
    pytest.importorskip("keras")
    pytest.importorskip("jax")
    code = ("import os; os.environ['KERAS_BACKEND']='tensorflow'\n"
            "import keras\n"
            "from conformance.adapters import keras_api\n"
            "try:\n    keras_api.load('jax')\nexcept ImportError as e:\n    print('refused:', e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    if "No module named" in out.stderr:
        pytest.skip("tensorflow backend not installed")
    assert "refused: keras runs on tensorflow" in out.stdout, out.stderr[-500:]


def test_every_registered_adapter_keeps_the_contract(monkeypatch):
    """Built-in, entry point and $CONFORMANCE_ADAPTERS alike (the tests' own adapters included): every name of
    adapters/base.py's Adapter, each function taking the arguments the runner and the benchmarks pass."""
    import importlib

    from conformance.adapters import registered
    from conformance.adapters.base import contract_problems

    monkeypatch.syspath_prepend(str(ROOT / "tests"))
    # the tests' adapters beside whatever the environment registers (a user's own, checked too, never replaced)
    own = os.environ.get("CONFORMANCE_ADAPTERS", "")
    monkeypatch.setenv("CONFORMANCE_ADAPTERS", ",".join(filter(None, [own, "mutant=mutant_adapter,fault=fault_adapter"])))
    adapters = registered()
    assert {"numpy", "torch", "tensorflow", "jax", "cupy", "mutant", "fault"} <= set(adapters)
    problems = {name: contract_problems(importlib.import_module(module)) for name, module in adapters.items()}
    broken = {name: lacks for name, lacks in problems.items() if lacks}
    assert not broken, broken


def test_an_incomplete_adapter_is_refused_with_what_it_lacks(tmp_path, monkeypatch):
    """The check can fail: an adapter module without evaluate() and with a two-argument bare_call is named as such."""
    from conformance.adapters import load_adapter

    (tmp_path / "half_adapter.py").write_text(
        "NAME = 'half'\n"
        "def load(cache): pass\ndef version(): return '0'\ndef devices(): return ['cpu']\ndef flags(): return {}\n"
        "def implementations(): return []\ndef set_threads(n): pass\n"
        "def benchmark_call(impl, inputs, mode, device, backward): pass\ndef bare_call(impl, inputs): pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("CONFORMANCE_ADAPTERS", "half=half_adapter")
    with pytest.raises(TypeError, match=r"no evaluate\(\)") as err:
        load_adapter("half")
    assert "bare_call() takes 2 arguments, the contract passes 5" in str(err.value)


def test_a_broken_adapter_registered_through_the_environment_fails_the_contract_test(tmp_path):
    """The contract test checks what $CONFORMANCE_ADAPTERS registers: run with a broken adapter there, it fails."""
    (tmp_path / "broken_adapter.py").write_text("NAME = 'broken'\ndef load(cache): pass\n")
    env = {**os.environ, "CONFORMANCE_ADAPTERS": "broken=broken_adapter",
           "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    res = subprocess.run([sys.executable, "-m", "pytest", "-q", "-n", "0", "-p", "no:cacheprovider",
                          f"{Path(__file__)}::test_every_registered_adapter_keeps_the_contract"],
                         capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert res.returncode == 1 and "'broken': ['no version()'" in res.stdout, res.stdout[-2000:]


def test_a_framework_whose_program_is_missing_is_absent_with_its_fix(tmp_path):
    """tinygrad's CPU device runs clang (its TOOLS): with no clang on PATH it is reported absent, before any worker
    starts, with how to add it (exit 2 when asked for by name), not an error on every call."""
    pytest.importorskip("tinygrad")
    env = {**os.environ, "PATH": str(tmp_path)}  # no clang (and nothing else) on PATH
    env.pop("CPU_LLVM", None)
    res = subprocess.run([sys.executable, "-m", "conformance.app.cli", "run", "--frameworks", "tinygrad", "--out", str(tmp_path / "out")],
                         capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert res.returncode == 2 and "missing clang" in res.stderr and "apt-get install clang" in res.stderr, res.stderr
    assert len([line for line in res.stderr.splitlines() if line.strip()]) == 1
    from conformance.adapters import FrameworkAbsent, load_adapter

    with pytest.MonkeyPatch.context() as mp:  # the Python API says the same (load_adapter checks TOOLS itself)
        mp.setenv("PATH", str(tmp_path))
        with pytest.raises(FrameworkAbsent, match="missing clang"):
            load_adapter("tinygrad")


@pytest.mark.parametrize("declared, said", [('QUICK_SECONDS = {"eager": "y"}', "QUICK_SECONDS must map to finite numbers of at least 0"),
                                            ('QUICK_SECONDS = {"eager": float("inf")}', "QUICK_SECONDS must map to finite numbers of at least 0"),
                                            ('COLD_SECONDS = "abc"', "COLD_SECONDS must be a dict")])
def test_a_declaration_the_planner_cannot_use_is_one_line_and_exit_2(tmp_path, declared, said):
    """A third party's adapter that declares its costs wrongly: the planner reads them before any worker starts, so the
    check is there (base.declaration), not only in the worker's contract check: one line naming it, no traceback."""
    (tmp_path / "costly_adapter.py").write_text("NAME = 'costly'\n" + declared + "\n")
    env = {**os.environ, "CONFORMANCE_ADAPTERS": "costly=costly_adapter",
           "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    res = subprocess.run([sys.executable, "-m", "conformance.app.cli", "run", "--frameworks", "costly", "--quick", "--out", str(tmp_path / "out")],
                         capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert res.returncode == 2 and said in res.stderr and "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr


@pytest.mark.parametrize("fresh", [False, True])
def test_list_says_an_adapter_run_would_refuse_is_not_usable(tmp_path, fresh):
    """`list` of a third party's adapter that lacks part of the contract says so, as `run` refuses it: before, `list`
    listed it as a framework of version unknown, and `list --fresh` ended in its describing process's traceback."""
    (tmp_path / "costly_adapter.py").write_text("NAME = 'costly'\nQUICK_SECONDS = {'eager': 'y'}\n"
                                                 "def implementations():\n    return []\n")
    env = {**os.environ, "CONFORMANCE_ADAPTERS": "costly=costly_adapter",
           "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    res = subprocess.run([sys.executable, "-m", "conformance.app.cli", "list", "costly", *(["--fresh"] if fresh else [])],
                         capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr
    assert res.stdout.startswith("costly: not usable, `run` refuses it (costly_adapter is not a complete adapter: ")
    assert "QUICK_SECONDS must map to finite numbers of at least 0" in res.stdout and "no load()" in res.stdout


def _costly_adapter(tmp_path: Path, monkeypatch, declarations: str) -> None:
    """Register a third party's adapter "costly" of these module-level declarations, in this process, under a module
    name of this test's own: a name shared between tests would be imported once and then found in sys.modules, so
    the test run after another would read the other's declarations."""
    module = f"costly_{tmp_path.name}"
    (tmp_path / f"{module}.py").write_text(f"NAME = 'costly'\n{declarations}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("CONFORMANCE_ADAPTERS", f"costly={module}")


def test_a_warm_fraction_that_is_not_a_share_is_refused_where_it_is_read(tmp_path, monkeypatch):
    """WARM_FRACTION is read only once a run measured a part cold: the reader refuses a negative one as the planner's
    other declarations are refused (DeclarationError: exit 2 from the command line)."""
    from conformance.adapters import warm_fraction
    from conformance.adapters.base import DeclarationError

    _costly_adapter(tmp_path, monkeypatch, "WARM_FRACTION = {'compiled': -1}")
    with pytest.raises(DeclarationError, match="WARM_FRACTION must map to finite numbers of at least 0"):
        warm_fraction("costly", "compiled")


@pytest.mark.parametrize("on_cpu, said", [
    ("{'intel-avx512': {'QUICK_SECONDS': {'eager': -3}}}", "ON_CPU['intel-avx512']: QUICK_SECONDS must map to finite numbers"),
    ("{'intel-avx512': {'START_SECONDS': float('nan')}}", "ON_CPU['intel-avx512']: START_SECONDS must be a finite number"),
    ("{'intel-avx512': {'IMPORT_SECONDS': -2}}", "ON_CPU['intel-avx512']: IMPORT_SECONDS must be a finite number"),
    ("{'intel-avx512': {'GPU': False}}", "ON_CPU['intel-avx512'] may hold only COLD_SECONDS"),
    ("{'intel-avx512': 3}", "ON_CPU must map CPU class names to dicts of declarations"),
])
def test_costs_declared_for_a_cpu_are_checked_as_the_modules_own(tmp_path, monkeypatch, on_cpu, said):
    """ON_CPU holds only the cost declarations, each under its own rule: a third party's adapter that gets one wrong
    is refused before any plan (DeclarationError: exit 2), also on a CPU of another class, which never reads it."""
    from conformance.adapters import quick_seconds
    from conformance.adapters.base import DeclarationError

    _costly_adapter(tmp_path, monkeypatch, f"ON_CPU = {on_cpu}")
    with pytest.raises(DeclarationError, match=re.escape(said)):
        quick_seconds("costly")


@pytest.mark.parametrize("name, read", [("START_SECONDS", "start_seconds"), ("IMPORT_SECONDS", "import_seconds")])
@pytest.mark.parametrize("value", ["float('nan')", "-1.0", "'3'"])
def test_a_start_up_that_is_not_a_number_of_seconds_is_refused(tmp_path, monkeypatch, name, read, value):
    """START_SECONDS and IMPORT_SECONDS, the module's own or a CPU class's, are refused by one rule where they are not
    a finite number of at least 0: the plan adds the first to every shard, the display divides by the second."""
    from conformance.adapters.base import DeclarationError
    from conformance.run import pool

    _costly_adapter(tmp_path, monkeypatch, f"{name} = {value}")
    said = f"{name} must be a finite number of at least 0" if value != "'3'" else f"{name} must be a int or float"
    with pytest.raises(DeclarationError, match=re.escape(said)):
        getattr(pool, read)("costly")
