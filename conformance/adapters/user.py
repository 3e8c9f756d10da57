"""A user's own function, judged as a built-in implementation is (`conformance check`, `conformance.testing.check`).

Framework `user`: one implementation, the function named by a TARGET (`package.module:function` or
`path/to/file.py:function`), run by the adapter of the framework it is written in (torch, jax, tensorflow, numpy),
so its values, gradients and Hessian-vector products come from that framework's own autodiff and its compiled mode
from that framework's compiler, exactly as for the framework's own functions.

What the function takes is read from its signature, never emulated:
- the class axis: a keyword `axis` or `dim` (else the classes must be the last axis: other cases are unsupported);
- the cross-entropy options of the SPEC under their names: `reduction`, `label_smoothing`, `ignore_index`, `weight`
  (class weights as an array of the framework's), and the LLM-kernel options `softcap` (also `logit_softcap`,
  `soft_cap`) and `z_loss` (also `lse_square_scale`); an option it does not take is `unsupported` for the cases that
  set it, except `reduction`, which the harness applies after the call with the framework's own sum or mean when
  the function returns per-example losses (marked `composed` in the record);
- what a cross-entropy without a `reduction` keyword returns (`returns`: none, mean or sum; `auto`, the default,
  infers it from one call on a three-row probe: three losses are per-example, one loss equal to the oracle's mean
  or sum is that): a function that returns the mean is judged on the `mean` cases only, against the oracle's mean,
  and is unsupported on the others, never composed into a wrong number;
- an answer of another shape than the op's contract gives (a mean where per-example losses were expected) is an
  error of the call's contract (ContractError), never taken for the function rejecting an input with no answer;
- softmax, log_softmax and logsumexp take `f(x)`; the cross entropies `f(logits, labels)` (dense labels, or integer class
  indices for sparse_softmax_cross_entropy); the masked ops `f(x, mask)`, the masked cross-entropy
  `f(logits, labels, where=mask)` (or `mask=`); the fused linear cross-entropy
  `f(hidden, weight, targets)`, with `bias=` where the case has a bias (a function without a `bias` keyword is
  unsupported there) and the class weights under `class_weight` (or `weight` where the classifier is not so named).

The target reaches every worker process as a `CheckSpec` (target, framework, op, returns, accumulates_in: the dtype
the function declares it computes in for narrower inputs) in the run's configuration (conformance/run/config.py), which
calls `configure`; in one process (`conformance.testing`) `use(function, framework, op, returns=...)` sets it directly.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import inspect
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from ..corpus.cases import Options
from ..corpus.inputs import Inputs, output_shape
from ..model.names import CROSS_ENTROPY_OPS, OPS
from ..model.ops import op as op_spec
from .base import Array, ContractError, Impl, Unsupported, declaration

NAME = "user"
FRAMEWORKS = ("torch", "jax", "tensorflow", "numpy")  # what a user's own function may be written in
OWN_PROCESS = True  # it takes on its framework's adapter, which may fix things per process (Keras's backend)
OPTIONS = ("reduction", "label_smoothing", "ignore_index", "weight", "softcap", "z_loss")
# the keywords a function may take an option under: the case format's name first, then the kernels' own names
KEYWORDS = {"softcap": ("softcap", "logit_softcap", "soft_cap"), "z_loss": ("z_loss", "lse_square_scale")}
MASK_KEYWORDS = ("where", "mask")  # a masked cross-entropy's mask, beside its labels: optax's name first

_fn: Callable | None = None
_spec: dict = {}
_fw: ModuleType | None = None
_returns: tuple[str, bool] | None = None  # (what the function returns, whether it was inferred), once known


class TargetError(ValueError):
    """A TARGET that does not name a function: bad input, one line."""


def resolve(target: str) -> Callable:
    """The function a TARGET names: `path/to/file.py:function` or `package.module:function`."""
    where, _, name = target.rpartition(":")
    if not where or not name:
        raise TargetError(f"{target!r}: a TARGET is module:function or path/to/file.py:function")
    if where.endswith(".py"):
        path = Path(where).resolve()
        if not path.is_file():
            raise TargetError(f"{target!r}: {path} is not a file")
        spec = importlib.util.spec_from_file_location(f"conformance_user_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        if str(path.parent) not in sys.path:  # the file's own folder, as `python file.py` has it: its glue modules import
            sys.path.insert(0, str(path.parent))
        try:
            spec.loader.exec_module(module)
        except SystemExit as exc:
            raise TargetError(f"{target!r}: importing {path} called sys.exit({exc.code!r}); a TARGET's module must not exit at import "
                              "(guard the script part with `if __name__ == '__main__':`)") from None
        except Exception as exc:
            raise TargetError(f"{target!r}: importing {path} raised {type(exc).__name__}: {exc}") from None
    else:
        if os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
        try:
            module = importlib.import_module(where)
        except SystemExit as exc:
            raise TargetError(f"{target!r}: importing {where} called sys.exit({exc.code!r}); a TARGET's module must not exit at import") from None
        except Exception as exc:
            raise TargetError(f"{target!r}: importing {where} raised {type(exc).__name__}: {exc}") from None
    fn = getattr(module, name, None)
    if not callable(fn):
        raise TargetError(f"{target!r}: {where} has no function {name!r}")
    return fn


def _probe(target: str, answer) -> None:
    """In a child process: resolve the TARGET and say how it went."""
    try:
        resolve(target)
    except TargetError as exc:
        answer.send(str(exc))
    except BaseException as exc:  # noqa: BLE001 - whatever the module does, the parent hears of it
        answer.send(f"{target!r}: importing it raised {type(exc).__name__}: {exc}")
    else:
        answer.send("")


def probe(target: str, timeout: float = 300.0) -> None:
    """Resolve a TARGET in a fresh process first: a module that ends the process at import (os._exit, a crash in its
    native code) or never returns ends the child, not the command that checks it. Raises TargetError."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    reader, writer = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_probe, args=(target, writer), daemon=True)
    child.start()
    writer.close()
    said = None
    if reader.poll(timeout):
        try:
            said = reader.recv()
        except EOFError:  # the child ended without a word
            pass
    if said is None:
        child.kill()
    child.join(timeout=10)
    if said is None:
        why = f"ended the process (exit code {child.exitcode})" if child.exitcode is not None else f"did not return within {timeout:g} s"
        raise TargetError(f"{target!r}: importing it {why}; a TARGET's module must import cleanly")
    if said:
        raise TargetError(said)


@dataclass(frozen=True)
class CheckSpec:
    """The function `conformance check` judges, by name: a worker imports it from its TARGET."""
    target: str  # path/to/file.py:name or package.module:name
    framework: str  # the framework it is written in (FRAMEWORKS)
    op: str
    returns: str = "auto"  # what a cross-entropy without a reduction keyword returns (RETURNS)
    accumulates_in: str | None = None  # the dtype it computes in for narrower inputs


def configure(spec: CheckSpec) -> None:
    """Judge the function `spec` names in this process (a worker's configuration carries it: run/config.py)."""
    global _fn, _spec, _fw, _returns
    _fn, _fw, _returns = None, None, None
    _spec = asdict(spec)
    _forget_compiled(spec.framework)


def _forget_compiled(framework: str) -> None:
    loaded = sys.modules.get(f"conformance.adapters.{framework}")
    if loaded is not None and hasattr(loaded, "forget_compiled"):
        loaded.forget_compiled()  # compiled callables are keyed by the implementation's name, which is the function's label


def use(function: Callable, framework: str, op: str, target: str = "", returns: str = "auto", accumulates_in: str | None = None) -> None:
    """Judge `function` (an op of `framework`) in this process."""
    global _fn, _spec, _fw, _returns
    _fn, _fw, _returns = function, None, None
    _spec = asdict(CheckSpec(target or _label(function), framework, op, returns, accumulates_in))
    _forget_compiled(framework)


def target() -> str:
    """The function under check, as its TARGET (or module:qualname for a function handed over in this process)."""
    return str(_spec.get("target", ""))


def _label(function: Callable) -> str:
    return f"{getattr(function, '__module__', '?')}:{getattr(function, '__qualname__', repr(function))}"


def _framework() -> ModuleType:
    global _fw
    if _fw is None:
        if _spec.get("framework") not in FRAMEWORKS:
            raise ImportError(f"no function to check (set by conformance check; framework one of {', '.join(FRAMEWORKS)})")
        _fw = importlib.import_module(f"conformance.adapters.{_spec['framework']}")
    return _fw


REQUIRES: tuple[str, ...] = ()
PACKAGES: tuple[str, ...] = ()


def load(compile_cache: Path | None = None) -> None:
    global _fn, REQUIRES, PACKAGES
    fw = _framework()
    fw.load(compile_cache)
    # the framework's packages are the framework's: an error raised in the user's own code is the code's (ownership)
    REQUIRES, PACKAGES = tuple(declaration(fw, "REQUIRES")), tuple(declaration(fw, "PACKAGES"))
    if _fn is None:
        _fn = resolve(_spec["target"])


def version() -> str:
    return f"{_spec['target']} on {_spec['framework']} {_framework().version()}"


def devices() -> list[str]:
    return _framework().devices()


def flags() -> dict:
    """The framework's flags, and what the function returns (said once per run: `returns`, `returns_inferred`)."""
    out = dict(_framework().flags())
    if (_spec.get("op") or "") in CROSS_ENTROPY_OPS:
        what, inferred = returns()
        out.update(returns=what, returns_inferred=inferred)
    return out


def set_threads(n: int) -> None:
    _framework().set_threads(n)


def _parameters() -> dict[str, inspect.Parameter]:
    try:
        return dict(inspect.signature(_fn).parameters)
    except (TypeError, ValueError):
        return {}


def _to_array(x: Array, values: Any, boolean: bool = False) -> Array:
    """Class weights (or, `boolean`, a mask) as an array of the function's framework, in the logits' dtype and place."""
    fw = _spec["framework"]
    if fw == "torch":
        return x.new_tensor(values, dtype=_framework().torch.bool) if boolean else x.new_tensor(values)
    if fw == "jax":
        return _framework().jnp.asarray(values, dtype=bool if boolean else x.dtype)
    if fw == "tensorflow":
        return _framework().tf.constant(values, dtype=_framework().tf.bool if boolean else x.dtype)
    import numpy as np

    return np.asarray(values, dtype=bool if boolean else x.dtype)


def _forward(*args: Any) -> Array:
    """forward(*primals, labels, inputs): the op's primals (op table), its labels, the inputs."""
    *primals, labels, inputs = args
    x = primals[0]
    params = _parameters()
    kwargs: dict[str, Any] = {}
    for axis_name in ("axis", "dim"):
        if axis_name in params:
            kwargs[axis_name] = inputs.axis
    opts = inputs.options
    for option in OPTIONS:
        keyword = _keyword(option, params)
        if keyword is None:
            continue
        value = getattr(opts, option)
        if option == "weight" and value is not None:
            value = _to_array(x, value)
        if value is not None:
            kwargs[keyword] = value
    if inputs.mask is not None and op_spec(inputs.op).labels != "mask":  # a masked cross-entropy: f(logits, labels, where=mask)
        keyword = next((k for k in MASK_KEYWORDS if k in params), None)
        if keyword is None:
            raise Unsupported(f"{_spec.get('target')} takes no mask keyword ({' or '.join(MASK_KEYWORDS)})")
        kwargs[keyword] = _to_array(x, inputs.mask, boolean=True)
    if len(primals) == 1:
        return _check_shape(_fn(*((x,) if labels is None else (x, labels)), **kwargs), tuple(x.shape), inputs)
    hidden, weight, bias = primals  # linear_cross_entropy: f(hidden, weight, targets, bias=...)
    if bias is not None:
        if "bias" not in params:
            raise Unsupported(f"{_spec.get('target')} takes no bias keyword")
        kwargs["bias"] = bias
    return _check_shape(_fn(hidden, weight, labels, **kwargs), (*hidden.shape[:-1], weight.shape[0]), inputs)


def _flattened(got: tuple[int, ...], want: tuple[int, ...], logits_shape: tuple, inputs: Inputs) -> bool:
    """Per-example losses returned flat: as many as expected, the classes the last axis (so C-order keeps them in order)."""
    return (inputs.op in CROSS_ENTROPY_OPS and len(got) == 1 and len(want) > 1 and int(np.prod(want)) == got[0]
            and inputs.axis == len(logits_shape) - 1)


def _check_shape(out: Any, logits_shape: tuple, inputs: Inputs) -> Any:
    """The function's answer must have the shape its op and reduction give: per-example losses, their mean or sum,
    or the logits' shape. Anything else is an error of the call's contract (ContractError). The logits' shape is the
    call's own (`logits_shape`, from its arguments), never `inputs`': a compiled function keeps the inputs of the call
    that compiled it, and serves other shapes."""
    shape = getattr(out, "shape", None)
    if shape is None:
        return out  # not an array: the framework adapter says what is wrong with it
    # per-example losses where the harness composes the case's reduction; the reduction itself where the function
    # takes the keyword or returns it already
    returned = implementations()[0].returned_reduction(inputs)
    want = output_shape(inputs.op, tuple(logits_shape), inputs.axis, returned)
    got = tuple(shape)  # sizes as the call has them: symbolic under a dynamic-shape compile, compared without fixing them
    if got != want and _flattened(got, want, logits_shape, inputs):
        return out.reshape(want)  # a function written for [N, C] input folds leading axes into N: the same losses, in order
    if got != want and not (want == () and got == (1,)):
        if inputs.op not in CROSS_ENTROPY_OPS:
            what = "the logits' shape"
        else:
            what = "per-example losses" if returned == "none" else f"the {returned} loss"
        hint = " (say what it returns: --returns mean|sum, or check(..., returns=))" if inputs.op in CROSS_ENTROPY_OPS else ""
        raise ContractError(f"{_spec.get('target')} returned shape {list(got)} where {what} {list(want)} were expected{hint}")
    return out


def returns() -> tuple[str, bool]:
    """What the function returns (none, mean or sum) and whether that was inferred: the declared value, else one call
    on a three-row probe (three losses: per-example; one, equal to the oracle's mean or sum of them: that)."""
    global _returns
    if _returns is None:
        declared = _spec.get("returns") or "auto"
        op = _spec.get("op")
        if declared != "auto" or op not in CROSS_ENTROPY_OPS or "reduction" in _parameters():
            _returns = (declared if declared != "auto" else "none", False)
        else:
            _returns = (_infer_returns(op), True)
    return _returns


def _infer_returns(op: str) -> str:
    logits = np.array([[0.0, 1.0, 2.0], [2.0, 0.5, 1.0], [1.0, 3.0, -1.0]])
    dense = np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    linear = not op_spec(op).logits_given  # hidden = the probe's logits, weight = I: the same logits
    dense_labels = op_spec(op).labels == "dense"
    probe = Inputs(op=op, dtype="float64", logits=logits, labels=dense if dense_labels else None,
                   sparse_labels=None if dense_labels else np.array([2, 1, 0]), axis=1, options=Options(),
                   cotangent=np.ones(3), direction=np.zeros_like(logits),
                   **({"hidden": logits, "weight": np.eye(3)} if linear else {}))
    impl = Impl(NAME, str(_spec.get("target")), op, _probe_forward, options=frozenset(OPTIONS) - {"reduction"}, key="probe")
    out = _framework().evaluate(impl, probe, ("value",), "eager", "cpu").get("value")
    if isinstance(out, BaseException) or out is None:
        return "none"  # the call's own error shows in its records
    values = np.asarray(out, dtype=np.float64).ravel()
    if values.size != 1:
        return "none"
    # Which reduction the one number is: the probe's three losses in float64 tell a mean from a sum by a factor of 3,
    # far beyond any rounding (the records then judge the function against the oracle, as every record is).
    logp = logits - logits.max(axis=1, keepdims=True)
    logp = logp - np.log(np.exp(logp).sum(axis=1, keepdims=True))
    per_example = -(dense * logp).sum(axis=1)
    for reduction, expected in (("mean", per_example.mean()), ("sum", per_example.sum())):
        if abs(values[0] - expected) <= 1e-6 * abs(expected):
            return reduction
    return "mean"  # one number that is neither: judged as a mean, whose records then say how far off it is


def _probe_forward(*args: Any) -> Array:
    *primals, labels, _ = args
    if len(primals) > 1:
        return _fn(primals[0], primals[1], labels)
    args = (primals[0],) if labels is None else (primals[0], labels)
    return _fn(*args, **({"axis": 1} if "axis" in _parameters() else {"dim": 1} if "dim" in _parameters() else {}))


def _keyword(option: str, params: dict) -> str | None:
    """The keyword under which the function takes `option`, or None where it does not take it. For a fused linear
    cross-entropy, whose second argument is the classifier's weight, class weights go under `class_weight`, or under
    `weight` only where the classifier has another name."""
    names = KEYWORDS.get(option, (option,))
    if option == "weight" and _computes_logits():
        names = ("class_weight",) + (("weight",) if list(params)[1:2] != ["weight"] else ())
    return next((k for k in names if k in params), None)


def _op() -> str | None:
    """The op under check in this process."""
    return _spec.get("op")


def _computes_logits() -> bool:
    op = _op()
    return op in OPS and not op_spec(op).logits_given


def implementations() -> list[Impl]:
    op = _op()
    params = _parameters()
    options = frozenset(o for o in OPTIONS if _keyword(o, params))
    last_axis_only = not ({"axis", "dim"} & set(params))
    whole = Impl(NAME, _spec["target"], op, _forward, options=options, key=f"{_spec['framework']}/{op}", last_axis_only=last_axis_only,
                 returns=returns()[0] if op in CROSS_ENTROPY_OPS else "none", accumulates_in=_spec.get("accumulates_in"))
    if _spec["framework"] != "torch":
        return [whole]
    # A graph break under fullgraph=True makes the whole-graph records `unsupported`; this door then compiles the same
    # function with graph breaks allowed, so that its compiled numerics are judged (and is `skip` where none broke).
    return [whole, dataclasses.replace(whole, name=f"{whole.name} [torch.compile(fullgraph=False)]", key=f"{whole.key}/graph-breaks",
                                       modes=("compiled",), whole_graph=False)]


def evaluate(impl: Impl, inputs: Inputs, quantities: Iterable[str], mode: str, device: str) -> dict:
    return _framework().evaluate(impl, inputs, quantities, mode, device)


def benchmark_call(impl: Impl, inputs: Inputs, mode: str, device: str, backward: bool) -> Callable[[], Any]:
    return _framework().benchmark_call(impl, inputs, mode, device, backward)


def bare_call(impl: Impl, inputs: Inputs, mode: str, device: str, backward: bool) -> Callable[[], Any]:
    return _framework().bare_call(impl, inputs, mode, device, backward)


def cache_damaged(error: BaseException) -> bool:
    return bool(getattr(_framework(), "cache_damaged", lambda e: False)(error))


def discard_cache(error: BaseException) -> int:
    return int(getattr(_framework(), "discard_cache", lambda e: 0)(error))
