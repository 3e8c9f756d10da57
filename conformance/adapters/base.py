"""What every framework adapter provides, and the few pieces they share.

An adapter is one module (numpy.py, torch.py, tensorflow.py, jax.py, keras_jax.py, keras_torch.py, cupy.py,
onnxruntime.py, or a plugin's) defining the same names:

    NAME: str                                   framework name in results, registry entries and --frameworks
                                                (docs/adapters.md walks through the whole contract)
    COLD_SECONDS: dict[(mode, dtype), float]    optional: measured seconds of a cold full run, which the runner
                                                uses to split the work into worker processes and order them
    load(compile_cache) -> None                 import the framework (raises ImportError when absent); with a
                                                folder, keep compiled programs there across runs (the
                                                framework's own persistent compilation cache)
    version() -> str
    devices() -> list[str]                      subset of ("cpu", "gpu") actually usable
    flags() -> dict                             settings that change numerics (recorded with the results)
    implementations() -> list[Impl]             every public function under test, one Impl each
    evaluate(impl, inputs, quantities, mode, device) -> dict[quantity, ndarray | BaseException]
    set_threads(n) -> None                      size the framework's CPU thread pools (benchmarks)
    benchmark_call(impl, inputs, mode, device, backward) -> () -> result
                                                the same computation as evaluate, on device-resident
                                                arrays, returning once the result exists (synchronised)
    bare_call(impl, inputs, mode, device, backward) -> () -> result
                                                the public call with nothing of the harness around it, written
                                                out as a user would (the overhead table compares the two)

and may declare the constants of `DECLARATIONS` below (each with its type, default and meaning: REQUIRES, PACKAGES,
TOOLS, COLD_SECONDS, QUICK_SECONDS, WARM_FRACTION, OWN_FRACTION, START_SECONDS, ON_CPU, OWN_PROCESS, NUMERIC_ENV, QUIET_ENV,
THREAD_ENV, QUICK_COMPILE, COMPILER, the GPU ones, SHARED_DOORS, EXPORTED_FROM) and the functions of
`OPTIONAL_FUNCTIONS` (device_problems, error_message, cache_damaged, discard_cache, forget_compiled). The core reads
them only through `declaration` and `optional_function`, which refuse a name outside the contract. For a GPU:

    GPU: bool                                   False: the framework has no GPU path (default True)
    GPU_ONLY: bool                              True: runs on a GPU alone (left out, not "absent", where none is visible)
    GPU_ENV: dict[str, str]                     environment a GPU worker sets before the import (memory growth
                                                instead of grabbing the whole device: workers share one GPU)
    GPU_COLD_SECONDS: dict[mode, float]         seconds of the corpus on one GPU, cold (orders the GPU queue)
    DEVICE_ASSERTS: tuple[str, ...]             devices ("gpu"), device/mode pairs ("cpu/compiled"), or pairs
                                                with "/threaded" (only where a worker computes on more than one
                                                thread) where an out-of-range class index poisons or aborts the
                                                process (a CUDA device-side assert, a compiled kernel's bounds
                                                check thrown in a parallel region): such cases run in a worker of
                                                their own, so that the poison reaches no other case. Any crash is
                                                recorded anyway, on any device (the call's `error` records name
                                                the signal; a new worker goes on)
    device_problems() -> dict[str, str]         why a device is not usable, for the error when one was asked for

and, where some of its implementations are a public API that other frameworks run too (a multi-backend library):

    SHARED_DOORS: tuple[str, ...]               prefixes of those implementations' keys; the report compares the
                                                same call across the frameworks that declare the prefix

Nothing framework-specific lives outside those modules. `evaluate` computes the requested quantities
with the framework's own autodiff and compiler. Each quantity's outcome is one of three, and nothing else:

    an array             the value the framework computed (judged against the oracle)
    an Unsupported       the framework does not offer this quantity here (e.g. a double backward under a
                         compiler); raising Unsupported says so for every quantity of the call at once
    any other exception  what the framework raised (the record's error: a finding, not the harness's failure)
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ..corpus.inputs import Inputs
from ..model.names import QUANTITIES
from ..model.selection import matches

# A framework's array or tensor. The adapters import their framework only in load(), so no signature can name its type.
Array = Any
GRADIENT_QUANTITIES = tuple(q for q in QUANTITIES if q != "value")  # every derivative of every op (op table)


@runtime_checkable
class Adapter(Protocol):
    """The contract above as a type: an adapter module satisfies it (checked by `contract_problems`, at load and by
    tests/test_entry_points.py for every registered adapter, built-in, entry point or $CONFORMANCE_ADAPTERS)."""

    NAME: str

    def load(self, compile_cache: Path | None) -> None: ...
    def version(self) -> str: ...
    def devices(self) -> list[str]: ...
    def flags(self) -> dict: ...
    def implementations(self) -> list[Impl]: ...
    def evaluate(self, impl: Impl, inputs: Inputs, quantities: Iterable[str], mode: str, device: str) -> dict: ...
    def set_threads(self, n: int) -> None: ...
    def benchmark_call(self, impl: Impl, inputs: Inputs, mode: str, device: str, backward: bool) -> Callable[[], Any]: ...
    def bare_call(self, impl: Impl, inputs: Inputs, mode: str, device: str, backward: bool) -> Callable[[], Any]: ...


# Every constant the core reads from an adapter module (adapters.declared), with its type and its default: the whole
# optional part of the contract in one place, checked by contract_problems like the required names.
DECLARATIONS: dict[str, tuple[type | tuple[type, ...], Any, str]] = {
    "REQUIRES": (tuple, (), "importable packages, checked before any worker starts; their frames are the framework's"),
    "TOOLS": (tuple, (), "programs the framework runs, which must be on PATH (checked with REQUIRES: absent without them)"),
    "PACKAGES": (tuple, (), "distributions whose versions change the numbers (recorded; the gate attributes moves to them)"),
    "COLD_SECONDS": (dict, {}, "(mode, dtype) -> seconds of a cold run of the bundled corpus: orders and splits workers"),
    "QUICK_SECONDS": (dict, {}, "mode -> seconds of a cold `run --quick`: with COLD_SECONDS, what a part of the corpus costs"),
    "WARM_FRACTION": (dict, {}, "mode -> a warm compile cache's seconds over a cold one's for the same selection (`run "
                                "--quick` twice in one cache): what a part this machine measured cold costs the next run "
                                "in that cache (default 1: no compile cache to warm)"),
    "OWN_FRACTION": (dict, {}, "mode -> a cold full run's seconds without the naive formulas (`run --no-naive`) over "
                               "those with them: what COLD_SECONDS, measured with them, come to for the framework's own "
                               "functions alone (default 1: no naive formulas to leave out)"),
    "START_SECONDS": ((int, float), None, "a worker's seconds beyond its modes' (interpreter, import, adapter, reading the "
                                          "cases, judging, sending: shard_costs.overhead), cold: what the display expects of "
                                          "a shard beyond its cases' seconds (default: the pool's START_S)"),
    "IMPORT_SECONDS": ((int, float), None, "a worker's seconds from its spawn to its framework imported (the interpreter, "
                                           "the import, the adapter: start_s + phases.import), cold: what tells the display "
                                           "this machine's pace before any shard has ended (default: none to tell)"),
    "ON_CPU": (dict, {}, "CPU class (\"intel-avx512\": run.environment.cpu_class) -> the cost declarations "
                         "(PER_CPU) measured on such a CPU, which replace the module's own there (those were measured "
                         "on REFERENCE_CPU)"),
    "OWN_PROCESS": (bool, False, "cannot share a process with another adapter (in-process tests run it as a subprocess)"),
    "NUMERIC_ENV": (tuple, (), "environment variables that change numerics (recorded with the results)"),
    "QUIET_ENV": (dict, {}, "environment set before the import to keep the framework's own logging quiet"),
    "THREAD_ENV": (tuple, (), "environment variables that size the framework's thread pools (benchmarks set them)"),
    "QUICK_COMPILE": (bool, False, "compiles in milliseconds: the GPU job runs it compiled too"),
    "COMPILER": (str, "", "the compiler whose on-disk caches compiled mode shares with other adapters' (the pool starts "
                          "another shard beside a running one of the same compiler while it can)"),
    "GPU": (bool, True, "False: the framework has no GPU path"),
    "GPU_ONLY": (bool, False, "runs on a GPU alone: on a machine without one it is left out unless named, not listed as absent"),
    "GPU_ENV": (dict, {}, "environment a GPU worker sets before the import"),
    "GPU_COLD_SECONDS": (dict, {}, "mode -> seconds of the corpus on one GPU, cold (orders the GPU queue)"),
    "DEVICE_ASSERTS": (tuple, (), "devices or device/mode pairs where an out-of-range class index poisons the process "
                                  "(\"/threaded\": where a worker computes on more than one thread)"),
    "SHARED_DOORS": (tuple, (), "key prefixes of a multi-backend public API that other frameworks run too"),
    "EXPORTED_FROM": (dict, {}, "key prefix -> framework: implementations running a model exported from that framework"),
}
# Optional functions the core calls where an adapter has them.
OPTIONAL_FUNCTIONS = {
    "device_problems": 0,  # () -> {device: why it is not usable}
    "error_message": 1,  # (error) -> the line of the framework's message that says what went wrong
    "cache_damaged": 1,  # (error) -> whether a compiled call failed on a damaged compile-cache entry
    "discard_cache": 1,  # (error) -> how many cache files it removed so that the call compiles afresh
    "forget_compiled": 0,  # () -> drop this process's compiled callables (a function under check replaced by another)
}


# Declarations whose values the planner computes with: each maps to a finite number of at least 0 (seconds, or a share).
NUMBERS = ("COLD_SECONDS", "QUICK_SECONDS", "WARM_FRACTION", "OWN_FRACTION", "GPU_COLD_SECONDS")
# The CPU class where the bundled adapters measured their own cost declarations (the 2-core VM CI ran on); ON_CPU
# holds those of other CPUs, and which of them a CPU gets is its class (run.environment.cpu_class), else these.
REFERENCE_CPU = "amd-avx2"
# The declarations that ON_CPU may give a CPU of its own: the cold seconds of the CPU-side runs and the start-up.
PER_CPU = ("COLD_SECONDS", "QUICK_SECONDS", "WARM_FRACTION", "OWN_FRACTION", "START_SECONDS", "IMPORT_SECONDS")
# Declarations of one number of seconds, or None where the adapter has not measured it.
SECONDS = ("START_SECONDS", "IMPORT_SECONDS")


def is_figure(x: Any) -> bool:
    """A cost the planner can compute with: a finite number of at least 0 (JSON reads `Infinity` and `NaN` too, and
    a bool is an int to Python), whether an adapter declares it or a run measured it."""
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x >= 0


class DeclarationError(ValueError):
    """An adapter module declares a constant of the contract wrongly (a third party's adapter: bad input)."""


class IncompleteAdapter(TypeError):
    """An adapter module that lacks part of the contract or declares it wrongly (contract_problems): a third party's
    adapter that would fail half-way through a run, refused before it starts."""


def declaration(module: ModuleType, name: str) -> Any:
    """A constant of the adapter module (DECLARATIONS), or its default where the module does not declare it. One of
    the wrong type or with values that are not numbers of at least 0 (NUMBERS, SECONDS) is a DeclarationError: the planner
    reads these before any worker starts, and would otherwise fail half-way through its arithmetic."""
    if name not in DECLARATIONS:
        raise KeyError(f"{name} is not a declaration of the adapter contract (base.DECLARATIONS)")
    value = getattr(module, name, DECLARATIONS[name][1])
    problem = _declaration_problem(name, value)
    if problem:
        raise DeclarationError(f"adapter {module.__name__}: {problem}")
    return value


def _declaration_problem(name: str, value: Any) -> str | None:
    kind = DECLARATIONS[name][0]
    if not isinstance(value, kind) and value is not DECLARATIONS[name][1]:
        return f"{name} must be a {kind.__name__ if isinstance(kind, type) else ' or '.join(k.__name__ for k in kind)}"
    if name in NUMBERS and not all(is_figure(v) for v in value.values()):
        return f"{name} must map to finite numbers of at least 0"
    if name in SECONDS and value is not None and not is_figure(value):
        return f"{name} must be a finite number of at least 0"
    if name == "ON_CPU":
        return _on_cpu_problem(value)
    return None


def _on_cpu_problem(value: dict) -> str | None:
    """What is wrong with an ON_CPU: a class that is not a name, or one that maps to anything but PER_CPU
    declarations, each as its own rule has it."""
    for cpu, figures in value.items():
        if not isinstance(cpu, str) or not isinstance(figures, dict):
            return "ON_CPU must map CPU class names to dicts of declarations"
        for name, figure in figures.items():
            if name not in PER_CPU:
                return f"ON_CPU[{cpu!r}] may hold only {', '.join(PER_CPU)}, not {name!r}"
            if problem := _declaration_problem(name, figure):
                return f"ON_CPU[{cpu!r}]: {problem}"
    return None


def optional_function(module: ModuleType, name: str) -> Callable | None:
    """An optional function of the adapter module (OPTIONAL_FUNCTIONS), or None where the module has none."""
    if name not in OPTIONAL_FUNCTIONS:
        raise KeyError(f"{name} is not an optional function of the adapter contract (base.OPTIONAL_FUNCTIONS)")
    return getattr(module, name, None)


def contract_problems(module: ModuleType) -> list[str]:
    """What an adapter module lacks of the contract: missing names, functions taking the wrong number of arguments,
    declared constants of the wrong type (DECLARATIONS)."""
    problems = [f"no {name}" for name in ("NAME",) if not isinstance(getattr(module, name, None), str)]
    problems += [p for name in DECLARATIONS if hasattr(module, name) and (p := _declaration_problem(name, getattr(module, name)))]
    for name, arity in OPTIONAL_FUNCTIONS.items():
        fn = getattr(module, name, None)
        if fn is not None and (not callable(fn) or _arity_problem(fn, arity)):
            problems.append(f"{name}() must take {arity} argument(s)")
    for name, member in vars(Adapter).items():
        if name.startswith("_") or not inspect.isfunction(member):
            continue
        fn = getattr(module, name, None)
        if not callable(fn):
            problems.append(f"no {name}()")
            continue
        wanted = len(inspect.signature(member).parameters) - 1  # the Protocol's methods take self; a module's do not
        try:
            params = list(inspect.signature(fn).parameters.values())
        except (TypeError, ValueError):
            continue  # a builtin without a signature: cannot be checked, not wrong
        required = sum(1 for p in params if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD))
        variadic = any(p.kind == p.VAR_POSITIONAL for p in params)
        if required > wanted or (len(params) < wanted and not variadic):
            problems.append(f"{name}() takes {len(params)} arguments, the contract passes {wanted}")
    return problems


def _arity_problem(fn: Callable, wanted: int) -> bool:
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return False
    required = sum(1 for p in params if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD))
    return required > wanted or (len(params) < wanted and not any(p.kind == p.VAR_POSITIONAL for p in params))


class Unsupported(Exception):
    """The framework does not offer this op, dtype, device, mode or option; str() says why."""


class NotRun(Exception):
    """A door that runs only where another did not (a split compile, where the whole-graph compile broke): its record
    is `skip`, with str() saying why; nothing was asked of the framework."""


@dataclass(frozen=True)
class Overwritten:
    """An answer from a call that also wrote into the arrays it was given (a kernel storing its gradient in the logits
    to save memory, a max shift done in place): whatever it returned, the caller's inputs are gone, so it fails."""

    value: Any  # what the call returned, judged as usual for the figures
    what: str  # which input changed, how much, and when


def overwritten(given: dict[str, np.ndarray], now: dict[str, np.ndarray], when: str) -> str | None:
    """Which of the inputs `given` differ from what they hold `now` (NaN equal to NaN, bit patterns of -0.0 aside),
    as "logits (3 of 12 entries) during the backward", or None when every input is as it was given."""
    changed = []
    for name, before in given.items():
        after = now.get(name)
        if after is None or before.shape != after.shape:
            continue
        a, b = np.asarray(before, np.float64), np.asarray(after, np.float64)
        differs = ~((a == b) | (np.isnan(a) & np.isnan(b)))
        if differs.any():
            changed.append(f"{name} ({int(differs.sum())} of {differs.size} entries)")
    return f"{' and '.join(changed)} during the {when}" if changed else None


def written_into(inputs: Inputs, primals: dict, labels: Any, to_numpy: Callable[[Any], np.ndarray], when: str) -> str | None:
    """Whether a call wrote into the tensors it was given, the op's `primals` (by name) and its `labels` (they are
    the caller's: a kernel that stores its gradient in the logits' or the hidden states' memory fails, whatever it
    returns); `to_numpy` reads a framework tensor back."""
    given = dict(inputs.given_primals)
    now = {n: to_numpy(primals[n]) for n in given}
    if labels is not None and inputs.given_labels is not None:
        now["labels"], given["labels"] = to_numpy(labels), inputs.given_labels
    return overwritten(given, now, when)


def all_primals(inputs: Inputs, given: Iterable[Any]) -> list:
    """The op's primals in call order from the given ones (an absent bias back as None), for a compiler that takes
    arrays only (mx.compile, TinyJit) and so is handed the given primals alone."""
    supplied = iter(given)
    return [None if a is None else next(supplied) for a in inputs.primals.values()]


def mark_overwritten(results: dict, what: str | None) -> dict:
    """Every answer of a call that wrote into its inputs becomes an Overwritten (exceptions and Unsupported stay)."""
    if what is None:
        return results
    return {q: v if isinstance(v, (BaseException, Overwritten)) else Overwritten(v, what) for q, v in results.items()}


@dataclass(frozen=True)
class Impl:
    framework: str
    name: str  # the public name users call, e.g. "tf.nn.softmax_cross_entropy_with_logits": display text, free to improve
    op: str
    forward: Callable[..., Any]  # forward(logits, labels, inputs) in the framework's own arrays
    options: frozenset[str] = frozenset()  # case options (docs/case-format.md) the public function takes itself
    naive: bool = False  # the textbook formula (softmax, then log), kept to show what fused functions protect against
    key: str = ""  # stable within the framework, e.g. "naive/softmax"; never changes when the label does
    last_axis_only: bool = False  # the public function has no axis argument: classes must be the last axis
    # A door that exists in some modes only (empty: every mode), e.g. a compiler setting that has no eager form.
    modes: tuple[str, ...] = ()
    # Case ids (globs) the door runs on (empty: every case): a costly door aimed at what it can reveal, said in its
    # declaration, never a way to leave out cases it fails.
    cases: tuple[str, ...] = ()
    static_shapes: bool = False  # compiled once per input shape (a fixed-shape training loop), not once for every shape
    # Input dtypes the door is defined for (empty: every dtype), e.g. a half-precision input computed in float32.
    dtypes: tuple[str, ...] = ()
    answers_in: str | None = None  # the dtype the door is asked to answer in (`dtype=torch.float32`): its range, not the input's
    # The dtype a door documents it computes in for narrower inputs (a fused kernel's float32 accumulation for bfloat16
    # and float16): judged by that dtype's working precision plus one rounding of its result (tolerance.accumulated).
    accumulates_in: str | None = None
    # Devices the door runs on (empty: every device the framework has), e.g. a Triton kernel: no records elsewhere,
    # and `conformance list` says so.
    devices: tuple[str, ...] = ()
    # Compiled mode: the compiler must take the function whole (a graph break is `unsupported`, said with its reason);
    # False: it may split the function, for a door that judges the compiled numerics of a function that breaks.
    whole_graph: bool = True
    # What a cross-entropy door that takes no `reduction` keyword returns: the per-example losses ("none"), or already
    # their "mean" or "sum" (most losses people write). Such a door is judged on the cases in that reduction, against
    # the oracle's value for it, and is unsupported on the others: never composed into another reduction.
    returns: str = "none"
    # Compiled mode: the case reductions (option `reduction`) under which the compiled graph is specialised on the sizes
    # of the per-example losses (Keras's mean divides by their count made a number). The warm-up call on canonical
    # sizes (shape_hints) keeps those sizes, so that its graph is the one that serves the case, not one compiled in vain.
    fixes_example_sizes: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        """The stable identity of records, registry entries, baselines and benchmarks: framework/key."""
        return f"{self.framework}/{self.key or self.op}"

    def runs(self, case_id: str | None, mode: str, dtype: str | None = None, device: str | None = None) -> bool:
        """Whether this door is defined for the case in the mode, dtype and device (`modes`, `cases`, `dtypes`, `devices`);
        a case_id of None asks about any case (a benchmark's own inputs)."""
        return ((not self.modes or mode in self.modes) and (not self.cases or case_id is None or matches(case_id, self.cases))
                and (not self.dtypes or dtype is None or dtype in self.dtypes)
                and (not self.devices or device is None or device in self.devices))

    def reduction_composed(self, inputs: Inputs) -> bool:
        """True when reduction is applied after the call with the framework's own sum/mean (recorded, never hidden)."""
        return inputs.options.reduction != "none" and "reduction" not in self.options and self.returns == "none"

    def returned_reduction(self, inputs: Inputs) -> str:
        """The reduction the call itself returns for these inputs (before any composition): the case's where the door
        takes the keyword or returns that reduction already, else per-example losses."""
        if "reduction" in self.options or self.returns == inputs.options.reduction:
            return inputs.options.reduction
        return "none"


class ContractError(Exception):
    """A call that answered outside its op's contract (another output shape): an error of the call, never evidence
    that it rejected an input that has no answer."""


def check_supported(impl: Impl, inputs: Inputs) -> None:
    """Raise Unsupported for an axis or options the public function does not take. Never emulate them."""
    if impl.last_axis_only and inputs.logits.ndim and inputs.axis != inputs.logits.ndim - 1:
        raise Unsupported(f"{impl.name} has no axis argument (classes are the last axis)")
    if impl.returns != "none" and "reduction" not in impl.options and inputs.options.reduction != impl.returns:
        raise Unsupported(f"{impl.name} returns the {impl.returns} of the per-example losses; this case asks for reduction "
                          f"'{inputs.options.reduction}', which it cannot give without composing another")
    if (inputs.options.ignore_index is not None and inputs.options.reduction == "mean" and "reduction" not in impl.options
            and impl.returns == "none"):
        # the mean over the counted targets is the function's to give: a mean composed over its per-example losses
        # would count the ignored ones too (their zeros), a wrong answer the function never gave
        raise Unsupported(f"{impl.name} returns per-example losses; the mean over the targets ignore_index keeps is not "
                          f"its to give (a composed mean would count the ignored ones)")
    for option in inputs.options.non_default():
        if option == "reduction":
            continue  # composed with the framework's own sum/mean where not native; see Impl.reduction_composed
        if option not in impl.options:
            raise Unsupported(f"{impl.name} has no {option} option")


def reduce_with(values: Any, reduction: str, sum_fn: Callable, mean_fn: Callable) -> Any:
    """Apply a case's reduction ('none', 'sum', 'mean') using the framework's own sum and mean."""
    if reduction == "sum":
        return sum_fn(values)
    if reduction == "mean":
        return mean_fn(values)
    return values


def no_sync() -> None:
    """Synchronisation where there is nothing to wait for: CPU kernels have finished when the call returns."""


def synced_forward(f: Callable, args: list, sync: Callable[[], None]) -> Callable[[], Any]:
    """What a benchmark times for a forward pass: f(*args), returning once the result exists (`sync`: the device's
    synchronisation, or no_sync on the CPU)."""
    def forward():
        out = f(*args)
        sync()
        return out
    return forward


def needs_grad(quantities: Iterable[str]) -> bool:
    return any(q in GRADIENT_QUANTITIES for q in quantities)


def quantity_arguments(quantities: Iterable[str], x: Array, labels: Array | None, g: Array | None, d: Array | None) -> tuple:
    """What a function computing `quantities` takes, and nothing more: (logits, labels), the cotangent for gradients,
    the direction for an HVP. Every argument of a compiled call costs dispatch time, which the benchmarks would count."""
    return (x, labels) + ((g,) if needs_grad(quantities) else ()) + ((d,) if "hvp" in quantities else ())


def exact_signature(compute: Callable, quantities: tuple[str, ...]) -> Callable:
    """`compute(x, labels, g, d)` with exactly the arguments quantity_arguments passes for `quantities`: a compiled
    call's default arguments cost argument binding on every call (the speed report's overhead table shows what is
    left), and unused arguments cost every framework dispatch time."""
    if "hvp" in quantities:
        return compute
    if needs_grad(quantities):
        return lambda x, labels, g: compute(x, labels, g, None)
    return lambda x, labels: compute(x, labels, None, None)


class Roof(Protocol):
    """A memory-bandwidth roof: what a benchmark's GB/s is a fraction of (speed.measure.CpuRoof; a GPU's from its
    adapter's library, cupy.CopyRoof)."""

    def describe(self) -> str: ...
    def gbps(self, nbytes: int) -> float: ...
