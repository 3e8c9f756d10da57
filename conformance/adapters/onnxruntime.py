"""ONNX Runtime: each op as a one-node (or few-node) ONNX model built with the `onnx` helper API, run in an
InferenceSession on the CPU execution provider (and CUDA where a GPU is present).

The deployment path of models trained elsewhere, and where its answers part from the training framework's:
- Softmax and LogSoftmax at opset 13 (normalise over one axis) and, as implementations of their own, at opset 11,
  where they normalise over the whole flattened block from `axis` on (onnx PR 2879 changed it): with the class axis
  last the two agree; with it anywhere else opset 11 computes another function, as a model exported at that opset
  does.
- The sparse cross-entropy through SoftmaxCrossEntropyLoss and through NegativeLogLikelihoodLoss(LogSoftmax), each
  with its own reduction, ignore_index and weight; classes on axis 1 as ONNX requires (a Transpose node puts them
  there, as an exporter does for a [B, T, V] model). The dense cross-entropy as exporters write it,
  -ReduceSum(y * LogSoftmax(x)). Masked forms through Where(mask, x, -inf).
- Modes: `eager` runs the graph with every optimisation off (ORT_DISABLE_ALL), `compiled` with all of them on
  (ORT_ENABLE_ALL, as users run it): graph fusions are ONNX Runtime's compiler.

ONNX Runtime is an inference runtime: every gradient quantity is `unsupported`. A kernel the execution provider
does not have for a dtype (bfloat16 on the CPU) is `unsupported` too, with ONNX Runtime's own message.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from ..corpus.inputs import Inputs
from .base import Impl, Unsupported, check_supported

NAME = "onnxruntime"
REQUIRES = ("onnxruntime", "onnx")
PACKAGES = ("onnxruntime", "onnx", "torch")  # torch: the exporter of the torch.onnx implementations
# Cold-cache seconds of one full run, every framework at once, on a 2-core AMD EPYC VM (tests/data/costs/cold-run-timing.json)
COLD_SECONDS = {("compiled", "bfloat16"): 6, ("compiled", "float16"): 4, ("compiled", "float32"): 7,
                ("compiled", "float64"): 5, ("eager", "bfloat16"): 7, ("eager", "float16"): 4,
                ("eager", "float32"): 11, ("eager", "float64"): 5}
QUICK_SECONDS = {"eager": 5, "compiled": 0}  # `run --quick`, cold, the same VM (tests/data/costs/quick-run-timing.json)
WARM_FRACTION = {"eager": 0.93}  # the same quick run again in its compile cache (tests/data/costs/quick-run-warm-pair.json)
START_SECONDS = 3.1  # its worker's seconds beyond its modes' in that quick run (shard_costs.overhead)
IMPORT_SECONDS = 2.1  # its worker's spawn to its framework imported in that quick run (start_s + import)
# the medians of 18 cold quick runs on a 2-core Xeon (tests/data/costs/quick-run-timing-intel-avx512.json)
ON_CPU = {"intel-avx512": {"QUICK_SECONDS": {"eager": 3, "compiled": 0}, "START_SECONDS": 2.2, "IMPORT_SECONDS": 1.2}}
OPSET = 17  # a current opset for the per-axis ops and the losses (SoftmaxCrossEntropyLoss and NLL are 13 there)
ort: Any = None
onnx: Any = None
_sessions: dict = {}

_ELEM = {"float16": 10, "float32": 1, "float64": 11, "bfloat16": 16, "int64": 7, "int32": 6, "bool": 9}


def load(compile_cache: Path | None = None) -> None:
    """ONNX Runtime compiles nothing to disk here: `compile_cache` is unused."""
    global ort, onnx
    import onnx as _onnx
    import onnxruntime as _ort

    ort, onnx = _ort, _onnx
    ort.set_default_logger_severity(3)  # warnings about unused initialisers would fill the log


def version() -> str:
    return f"onnxruntime {ort.__version__}, onnx {onnx.__version__}"


def devices() -> list[str]:
    return ["cpu"] + (["gpu"] if "CUDAExecutionProvider" in ort.get_available_providers() else [])


def device_problems() -> dict[str, str]:
    if "gpu" in devices():
        return {}
    return {"gpu": f"no CUDAExecutionProvider (providers: {', '.join(ort.get_available_providers())}; pip install onnxruntime-gpu)"}


_threads = 0


def set_threads(n: int) -> None:
    global _threads
    _threads = n
    _sessions.clear()


def flags() -> dict:
    return {"intra_op_num_threads": _threads or "default", "providers": ort.get_available_providers()}


# --- the graphs: build(inputs, feeds) -> (nodes, opset), or a serialized model (an exported one); the graph's inputs
# are named x, labels, mask and weight, as the feeds are, and its output y


def _node(op: str, inputs: list[str], outputs: list[str], **attrs) -> Any:
    return onnx.helper.make_node(op, inputs, outputs, **attrs)


def _softmax(op: str, opset: int) -> Callable:
    def build(inputs: Inputs, feeds: dict) -> tuple[list, int]:
        return [_node(op, ["x"], ["y"], axis=inputs.axis)], opset
    return build


def _masked(op: str) -> Callable:
    def build(inputs: Inputs, feeds: dict) -> tuple[list, int]:
        minus_inf = onnx.helper.make_tensor("minus_inf", _ELEM[inputs.dtype], [], [float("-inf")])
        return [_node("Constant", [], ["ninf"], value=minus_inf), _node("Where", ["mask", "x", "ninf"], ["xm"]),
                _node(op, ["xm"], ["y"], axis=inputs.axis)], OPSET
    return build


def _classes_on_axis_1(inputs: Inputs, nodes: list) -> str:
    """ONNX's losses take classes on axis 1 ([N, C, d1, ...]): a Transpose node moves them there, as exporters do."""
    ndim, axis = inputs.logits.ndim, inputs.axis % inputs.logits.ndim
    if axis == 1:
        return "x"
    rest = [i for i in range(ndim) if i != axis]  # the labels' axes, in order
    perm = [rest[0], axis, *rest[1:]]
    nodes.append(_node("Transpose", ["x"], ["x_nc"], perm=perm))
    return "x_nc"


def _loss(kind: str) -> Callable:
    def build(inputs: Inputs, feeds: dict) -> tuple[list, int]:
        if inputs.logits.ndim < 2:
            raise Unsupported(f"ONNX's {kind} takes scores [N, C, ...] (no single-row form)")
        nodes: list = []
        scores = _classes_on_axis_1(inputs, nodes)
        opts = inputs.options
        attrs: dict = {"reduction": opts.reduction}
        if opts.ignore_index is not None:
            attrs["ignore_index"] = opts.ignore_index
        operands = [scores, "labels"] + (["weight"] if opts.weight is not None else [])
        if kind == "SoftmaxCrossEntropyLoss":
            nodes.append(_node("SoftmaxCrossEntropyLoss", operands, ["y"], **attrs))
        else:
            nodes += [_node("LogSoftmax", [scores], ["logp"], axis=1),
                      _node("NegativeLogLikelihoodLoss", ["logp", *operands[1:]], ["y"], **attrs)]
        return nodes, OPSET
    return build


def _linear(inputs: Inputs, feeds: dict) -> tuple[list, int]:
    """An LLM head as exporters write it: MatMul(hidden, Transpose(W)) (+ Add bias), the classes moved to axis 1 for a
    [B, T, C] batch, then SoftmaxCrossEntropyLoss (class indices only: ONNX has no dense fused loss)."""
    if inputs.sparse_labels is None:
        raise Unsupported("SoftmaxCrossEntropyLoss takes class indices, not dense targets")
    nodes = [_node("Transpose", ["classifier"], ["classifier_t"], perm=[1, 0]), _node("MatMul", ["hidden", "classifier_t"], ["z0"])]
    logits = "z0"
    if "classifier_bias" in feeds:
        nodes.append(_node("Add", ["z0", "classifier_bias"], ["z"]))
        logits = "z"
    rank = inputs.hidden.ndim
    if rank > 2:
        nodes.append(_node("Transpose", [logits], ["z_nc"], perm=[0, rank - 1, *range(1, rank - 1)]))
        logits = "z_nc"
    opts = inputs.options
    attrs: dict = {"reduction": opts.reduction, **({"ignore_index": opts.ignore_index} if opts.ignore_index is not None else {})}
    operands = [logits, "labels"] + (["weight"] if opts.weight is not None else [])
    return [*nodes, _node("SoftmaxCrossEntropyLoss", operands, ["y"], **attrs)], OPSET


def _dense(inputs: Inputs, feeds: dict) -> tuple[list, int]:
    """-ReduceSum(y * LogSoftmax(x), axis): the dense cross-entropy as exporters write it (ONNX has no dense fused loss)."""
    axes = onnx.helper.make_tensor("axes", _ELEM["int64"], [1], [inputs.axis])
    nodes = [_node("LogSoftmax", ["x"], ["logp"], axis=inputs.axis), _node("Mul", ["labels", "logp"], ["ylogp"]),
             _node("Constant", [], ["axes"], value=axes), _node("ReduceSum", ["ylogp", "axes"], ["s"], keepdims=0),
             _node("Neg", ["s"], ["loss"])]
    reduce = {"sum": "ReduceSum", "mean": "ReduceMean"}.get(inputs.options.reduction)
    if reduce:  # composed with ONNX's own reduction, in the graph (recorded as composed)
        nodes.append(_node(reduce, ["loss"], ["y"], keepdims=0))
    else:
        nodes.append(_node("Identity", ["loss"], ["y"]))
    return nodes, 18


LOSS_OPTIONS = frozenset({"reduction", "ignore_index", "weight"})
# PyTorch's functions as a model exported with torch.onnx.export (TorchScript exporter, opset 17) runs them in
# deployment: "trained vs deployed" on the same records (report/cross_backend.py pairs them with torch's own).
EXPORTED_FROM = {"torch.onnx/": "torch"}
_EXPORTED_KEYS = ("softmax", "log_softmax", "cross_entropy", "sparse_cross_entropy", "masked_fill/softmax", "masked_fill/log_softmax")


def _exported(impl: Impl) -> Callable:
    def build(inputs: Inputs, feeds: dict) -> bytes:
        import io
        import warnings

        from . import torch as torch_adapter

        if torch_adapter.torch is None:
            try:
                torch_adapter.load(None)
            except ImportError:
                raise Unsupported("the exporter is PyTorch's, and torch is not installed here") from None
        torch = torch_adapter.torch

        class Model(torch.nn.Module):
            def forward(self, x, labels=None):
                return impl.forward(x, labels, inputs)

        names = [n for n in ("x", "labels", "mask") if n in feeds]
        args = tuple(torch_adapter._tensor(feeds[n], "cpu") for n in names)
        dynamic = {n: {i: f"{n}{i}" for i in range(feeds[n].ndim)} for n in names}
        buffer = io.BytesIO()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                torch.onnx.export(Model(), args, buffer, opset_version=OPSET, dynamo=False, input_names=names, output_names=["y"],
                                  dynamic_axes=dynamic)
            except (torch.onnx.errors.UnsupportedOperatorError, torch.onnx.errors.SymbolicValueError) as exc:
                # what the exporter cannot express (label_smoothing: "Unsupported: ONNX does not support ...")
                if not str(exc).startswith("Unsupported"):
                    raise
                raise Unsupported(f"torch.onnx.export: {str(exc).splitlines()[0][:200]}") from None
        return buffer.getvalue()
    return build


def _exported_implementations() -> list[Impl]:
    """The PyTorch doors above, exported. Offered whether or not torch is installed (it is not this adapter's
    requirement), so that their ids and registry entries stay the same: without torch they are `unsupported`."""
    from . import torch as torch_adapter

    return [Impl(NAME, f"torch.onnx.export({impl.name}) in ONNX Runtime", impl.op, _exported(impl), options=impl.options,
                 key=f"torch.onnx/{impl.key}", last_axis_only=impl.last_axis_only)
            for impl in torch_adapter.implementations() if impl.key in _EXPORTED_KEYS]


def implementations() -> list[Impl]:
    doors = (
        ("onnx Softmax (opset 13+)", "softmax", _softmax("Softmax", OPSET), "Softmax-13", frozenset()),
        ("onnx LogSoftmax (opset 13+)", "log_softmax", _softmax("LogSoftmax", OPSET), "LogSoftmax-13", frozenset()),
        # opset 11: the input coerced to 2-D at `axis` and normalised over the flattened block
        ("onnx Softmax (opset 11: flattened from axis)", "softmax", _softmax("Softmax", 11), "Softmax-11", frozenset()),
        ("onnx LogSoftmax (opset 11: flattened from axis)", "log_softmax", _softmax("LogSoftmax", 11), "LogSoftmax-11", frozenset()),
        ("onnx SoftmaxCrossEntropyLoss", "sparse_softmax_cross_entropy", _loss("SoftmaxCrossEntropyLoss"), "SoftmaxCrossEntropyLoss",
         LOSS_OPTIONS),
        ("onnx NegativeLogLikelihoodLoss(LogSoftmax)", "sparse_softmax_cross_entropy", _loss("NegativeLogLikelihoodLoss"),
         "NegativeLogLikelihoodLoss/LogSoftmax", LOSS_OPTIONS),
        ("onnx -ReduceSum(y * LogSoftmax(x))", "softmax_cross_entropy", _dense, "ReduceSum/LogSoftmax", frozenset({"reduction"})),
        ("onnx Softmax(Where(mask, x, -inf))", "masked_softmax", _masked("Softmax"), "Where/Softmax", frozenset()),
        ("onnx LogSoftmax(Where(mask, x, -inf))", "masked_log_softmax", _masked("LogSoftmax"), "Where/LogSoftmax", frozenset()),
        ("onnx SoftmaxCrossEntropyLoss(MatMul(h, Transpose(W)) + b)", "linear_cross_entropy", _linear, "MatMul/SoftmaxCrossEntropyLoss",
         LOSS_OPTIONS),
    )
    return [*(Impl(NAME, label, op, build, options=options, key=key) for label, op, build, key, options in doors),
            *_exported_implementations()]


# --- running them


# the graph's input names for the primals of an op that computes its logits ("weight" stays the class weights)
_PRIMAL_FEEDS = {"hidden": "hidden", "weight": "classifier", "bias": "classifier_bias"}


def _feeds(impl: Impl, inputs: Inputs) -> dict[str, np.ndarray]:
    primals = inputs.given_primals
    if "logits" in primals:
        feeds = {"x": np.ascontiguousarray(inputs.logits)}
    else:
        feeds = {_PRIMAL_FEEDS[n]: np.ascontiguousarray(a) for n, a in primals.items()}
    given = inputs.given_labels
    if given is not None:
        feeds["mask" if inputs.mask is not None else "labels"] = np.ascontiguousarray(given)
    if inputs.options.weight is not None and inputs.sparse_labels is not None:  # the losses' class weights
        feeds["weight"] = np.asarray(inputs.options.weight, dtype=next(iter(primals.values())).dtype)
    return feeds


def _elem(a: np.ndarray) -> int:
    return _ELEM["bfloat16" if a.dtype.name == "bfloat16" else str(a.dtype)]


def _session(impl: Impl, inputs: Inputs, feeds: dict[str, np.ndarray], mode: str, device: str) -> Any:
    shapes = tuple((k, v.dtype.str, v.ndim) for k, v in sorted(feeds.items()))
    key = (impl.key, inputs.dtype, inputs.axis, inputs.options, shapes, mode, device)  # shapes: every feed's dtype and rank
    if key in _sessions:
        return _sessions[key]
    built = impl.forward(inputs, feeds)
    serialized = built if isinstance(built, bytes) else _model(impl, feeds, *built)
    options = ort.SessionOptions()
    options.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_ENABLE_ALL if mode == "compiled"
                                        else ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    if _threads:
        options.intra_op_num_threads = _threads
    providers = ["CUDAExecutionProvider"] if device == "gpu" else ["CPUExecutionProvider"]
    try:
        session = ort.InferenceSession(serialized, options, providers=providers)
    except Exception as exc:
        text = str(exc)
        # NOT_IMPLEMENTED: the provider has no kernel for the op and dtype; a Type Error: the opset's type constraints
        # leave the dtype out (bfloat16 for Softmax at opset 11 and for the losses): the model is not valid ONNX
        if "NOT_IMPLEMENTED" in text or "Could not find an implementation" in text or "Type Error: Type 'tensor(" in text:
            raise Unsupported(f"ONNX Runtime ({providers[0]}) has no kernel: {text.splitlines()[0][:200]}") from None
        raise
    _sessions[key] = session
    return session


def _model(impl: Impl, feeds: dict[str, np.ndarray], nodes: list, opset: int) -> bytes:
    graph_inputs = [onnx.helper.make_tensor_value_info(name, _elem(v), [f"{name}{i}" for i in range(v.ndim)])
                    for name, v in feeds.items()]
    # every op here answers in its first input's dtype (the logits', the hidden states')
    out = onnx.helper.make_tensor_value_info("y", _elem(feeds["x"] if "x" in feeds else feeds["hidden"]), None)
    graph = onnx.helper.make_graph(nodes, f"conformance_{impl.key.replace('/', '_')}", graph_inputs, [out])
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", opset)])
    model.ir_version = min(model.ir_version, 10)  # what ONNX Runtime releases of the last two years read
    return model.SerializeToString()


def _run(session: Any, feeds: dict[str, np.ndarray]) -> Any:
    """The model's own inputs only: an exported model holds the class weights as a constant, and the exporter drops
    inputs the graph does not use."""
    wanted = {i.name for i in session.get_inputs()}
    return session.run(["y"], {k: v for k, v in feeds.items() if k in wanted})


def evaluate(impl: Impl, inputs: Inputs, quantities: Iterable[str], mode: str, device: str) -> dict:
    check_supported(impl, inputs)
    results: dict = {q: Unsupported("ONNX Runtime is an inference runtime: no gradients") for q in quantities if q != "value"}
    if "value" not in quantities:
        return results
    feeds = _feeds(impl, inputs)
    try:
        session = _session(impl, inputs, feeds, mode, device)
        results["value"] = np.asarray(_run(session, feeds)[0])
    except Unsupported:
        raise
    except Exception as exc:  # what the runtime raised loading or running the model (an out-of-range label) is its answer
        results["value"] = exc
    return results


def benchmark_call(impl: Impl, inputs: Inputs, mode: str, device: str, backward: bool) -> Callable[[], Any]:
    check_supported(impl, inputs)
    if backward:
        raise Unsupported("ONNX Runtime is an inference runtime: no gradients")
    feeds = _feeds(impl, inputs)
    session = _session(impl, inputs, feeds, mode, device)
    return lambda: _run(session, feeds)[0]


def bare_call(impl: Impl, inputs: Inputs, mode: str, device: str, backward: bool) -> Callable[[], Any]:
    return benchmark_call(impl, inputs, mode, device, backward)


def forget_compiled() -> None:
    """Drop every session: the next call builds its model afresh."""
    _sessions.clear()
