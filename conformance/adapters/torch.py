"""PyTorch: torch.softmax, torch.nn.functional.log_softmax and torch.nn.functional.cross_entropy.

Gradients come from torch.autograd (a double backward for hvp). Compiled mode is torch.compile with
fullgraph=True, so that a graph break raises instead of silently running eager; one compiled callable is
kept per (implementation, options, dtype, rank, device) and Dynamo's recompile limit is raised so the
cache never falls back to eager without saying so.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import os
import pickle
import re
import sys
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from ..corpus.inputs import Inputs
from ..model.dtypes import bfloat16
from . import naive, shape_hints
from .base import Array, Impl, NotRun, Unsupported, check_supported, mark_overwritten, needs_grad, no_sync, reduce_with, synced_forward, written_into
from .ownership import chain

NAME = "torch"
REQUIRES = ("torch",)  # importable packages; checked before any worker starts
PACKAGES = ("torch",)  # versions that change the numbers (the gate attributes moves to them)
NUMERIC_ENV = ("TORCH_ALLOW_TF32_CUBLAS_OVERRIDE", "NVIDIA_TF32_OVERRIDE")  # recorded with the results
# Inductor: its precompiled header and its kernels (keyed by their source's hash, so Keras's softmax and torch's share
# one) are built under file locks in the run's compile cache, which a second torch.compile worker waits on.
COMPILER = "inductor"
# An out-of-range target on CUDA is a device-side assert: the process is poisoned. On the CPU, an Inductor kernel
# checks the index with a throw, which aborts the process (std::terminate) where the loop runs in an OpenMP parallel
# region, and raises a RuntimeError where it does not: Inductor parallelises only with more than one thread
# (pytorch/pytorch#195402). F.cross_entropy and Keras's sparse cross-entropy both abort so, compiled on [4096, 1000]
# or [2, 1000] with 2 threads, and raise with 1.
DEVICE_ASSERTS = ("gpu", "cpu/compiled/threaded")
# Cold-cache seconds of one full run, every framework at once, on a 2-core AMD EPYC VM (tests/data/costs/cold-run-timing.json)
COLD_SECONDS = {("compiled", "bfloat16"): 306, ("compiled", "float16"): 268, ("compiled", "float32"): 595,
                ("compiled", "float64"): 403, ("eager", "bfloat16"): 36, ("eager", "float16"): 29,
                ("eager", "float32"): 35, ("eager", "float64"): 19}
QUICK_SECONDS = {"eager": 6, "compiled": 73}  # `run --quick`, cold, the same VM (tests/data/costs/quick-run-timing.json)
WARM_FRACTION = {"eager": 0.09, "compiled": 0.13}  # the same quick run again in its compile cache (tests/data/costs/quick-run-warm-pair.json)
OWN_FRACTION = {"compiled": 0.75}  # a cold full run without the naive formulas over one with them (tests/data/costs/full-run-naive-pair.json)
START_SECONDS = 8.0  # its worker's seconds beyond its modes' in that quick run (shard_costs.overhead)
IMPORT_SECONDS = 6.5  # its worker's spawn to its framework imported in that quick run (start_s + import)
# the medians of 18 cold quick runs on a 2-core Xeon (tests/data/costs/quick-run-timing-intel-avx512.json)
ON_CPU = {"intel-avx512": {"QUICK_SECONDS": {"eager": 3, "compiled": 51}, "START_SECONDS": 3.5, "IMPORT_SECONDS": 2.6}}
torch: Any = None
F: Any = None
_compiled: dict = {}


def load(compile_cache: Path | None = None) -> None:
    global torch, F
    if compile_cache is not None:  # Inductor's on-disk caches (FX graph, AOTAutograd); default: /tmp/torchinductor_<user>
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(compile_cache / "torchinductor")
    if os.environ.get("OMP_NUM_THREADS", "").isdigit():
        # A run's worker has its share of the cores (OMP_NUM_THREADS): Inductor's compile pool would otherwise start a
        # process per core of the machine, whose g++ builds take the cores of the workers beside it. The code it
        # compiles is the same either way.
        os.environ.setdefault("TORCHINDUCTOR_COMPILE_THREADS", os.environ["OMP_NUM_THREADS"])
    import torch as _torch
    import torch.nn.functional as _F

    torch, F = _torch, _F
    # Every distinct option set is a new guard on the same code object; the default limit (8) would
    # make Dynamo fall back to eager after eight of them, and the results would no longer be compiled.
    torch._dynamo.config.cache_size_limit = 4096
    if hasattr(torch._dynamo.config, "recompile_limit"):
        torch._dynamo.config.recompile_limit = 4096
    torch._dynamo.config.accumulated_cache_size_limit = 1 << 20


def version() -> str:
    return torch.__version__


def devices() -> list[str]:
    return ["cpu"] + (["gpu"] if torch.cuda.is_available() else [])


def device_problems() -> dict[str, str]:
    if torch.cuda.is_available():
        return {}
    build = "a CPU-only build" if torch.version.cuda is None else f"built for CUDA {torch.version.cuda}, but no device or driver"
    return {"gpu": f"torch.cuda.is_available() is False (torch {torch.__version__}: {build})"}


def set_threads(n: int) -> None:
    torch.set_num_threads(n)


def flags() -> dict:
    out = {"torch.get_num_threads": torch.get_num_threads(),
           "torch.are_deterministic_algorithms_enabled": torch.are_deterministic_algorithms_enabled()}
    if torch.cuda.is_available():
        out["torch.backends.cuda.matmul.allow_tf32"] = torch.backends.cuda.matmul.allow_tf32
        out["torch.get_float32_matmul_precision"] = torch.get_float32_matmul_precision()
    return out


def _class_first(x, axis: int):
    """F.cross_entropy wants the class axis at dim 1 (or 0 for a single unbatched row): a layout move only."""
    return x if x.ndim == 1 else torch.movedim(x, axis, 1)


def softmax(x: Array, labels: Array | None, inputs: Inputs) -> Array:
    return torch.softmax(x, dim=inputs.axis)


def log_softmax(x: Array, labels: Array | None, inputs: Inputs) -> Array:
    return F.log_softmax(x, dim=inputs.axis)


def logsumexp(x: Array, labels: Array | None, inputs: Inputs) -> Array:
    return torch.logsumexp(x, dim=inputs.axis)


def special_logsumexp(x: Array, labels: Array | None, inputs: Inputs) -> Array:
    return torch.special.logsumexp(x, dim=inputs.axis)


# The mixed-precision idiom: half-precision scores normalised in float32 by the kernel itself (`dtype=` casts the
# input before the reduction), as attention and LLM heads call it (pytorch/pytorch#123911).
def softmax_in_float32(x: Array, labels: Array | None, inputs: Inputs) -> Array:
    return torch.softmax(x, dim=inputs.axis, dtype=torch.float32)


def log_softmax_in_float32(x: Array, labels: Array | None, inputs: Inputs) -> Array:
    return F.log_softmax(x, dim=inputs.axis, dtype=torch.float32)


def functional_softmax(x: Array, labels: Array | None, inputs: Inputs) -> Array:
    return F.softmax(x, dim=inputs.axis)


def special_softmax(x: Array, labels: Array | None, inputs: Inputs) -> Array:
    return torch.special.softmax(x, dim=inputs.axis)


def special_log_softmax(x: Array, labels: Array | None, inputs: Inputs) -> Array:
    return torch.special.log_softmax(x, dim=inputs.axis)


def _loss_kwargs(x, inputs, smoothing: bool = True) -> dict:
    """The SPEC options as the torch losses take them (nll_loss has no label_smoothing)."""
    opts = inputs.options
    kwargs = {"reduction": opts.reduction, **({"label_smoothing": opts.label_smoothing} if smoothing else {})}
    if opts.weight is not None:
        kwargs["weight"] = torch.tensor(opts.weight, dtype=x.dtype, device=x.device)
    if opts.ignore_index is not None:
        kwargs["ignore_index"] = opts.ignore_index
    return kwargs


def _target(labels, inputs):
    return labels if labels.dtype in (torch.int64, torch.int32) else _class_first(labels, inputs.axis)


def cross_entropy(x: Array, labels: Array | None, inputs: Inputs) -> Array:
    return F.cross_entropy(_class_first(x, inputs.axis), _target(labels, inputs), **_loss_kwargs(x, inputs))


def cross_entropy_module(x: Array, labels: Array | None, inputs: Inputs) -> Array:
    """The module people put in a model: a different door (its own defaults are the functional's, kept so)."""
    return torch.nn.CrossEntropyLoss(**_loss_kwargs(x, inputs))(_class_first(x, inputs.axis), _target(labels, inputs))


def nll_of_log_softmax(x: Array, labels: Array | None, inputs: Inputs) -> Array:
    """The two-step form of older code and tutorials: F.nll_loss(F.log_softmax(x))."""
    logp = F.log_softmax(_class_first(x, inputs.axis), dim=0 if x.ndim == 1 else 1)
    return F.nll_loss(logp, labels, **_loss_kwargs(x, inputs, smoothing=False))


def masked_fill_softmax(x: Array, mask: Array, inputs: Inputs) -> Array:
    """Masked softmax as people write it in PyTorch (attention code): masked_fill(~mask, -inf), then softmax."""
    return torch.softmax(x.masked_fill(~mask, float("-inf")), dim=inputs.axis)


def masked_fill_log_softmax(x: Array, mask: Array, inputs: Inputs) -> Array:
    return F.log_softmax(x.masked_fill(~mask, float("-inf")), dim=inputs.axis)




def _linear_ce(options_of: Callable[[], Any] | None) -> Callable:
    """F.linear_cross_entropy with `options_of()` (None: the reference path). It takes [N, D] hidden states, so
    [B, T, D] goes in as training code passes it, flattened to [B*T, D] (a layout move), and per-token losses come
    back in [B, T]."""
    def forward(hidden: Array, weight: Array, bias: Array | None, targets: Array, inputs: Inputs) -> Array:
        if options_of is not None:  # anything but int64 class indices runs the reference path (with a warning)
            _class_indices(targets, "the chunked path")
        kwargs = _loss_kwargs(hidden, inputs)
        kwargs["weight"] = kwargs.pop("weight", None)  # the per-class loss weight; the classifier is `linear_weight`
        flat_hidden, flat_targets = _flat_tokens(hidden, targets)
        out = F.linear_cross_entropy(flat_hidden, weight, flat_targets, linear_bias=bias,
                                     options=None if options_of is None else options_of(), **kwargs)
        return _per_token(out, hidden, inputs)
    return forward


def _class_indices(targets: Array, who: str) -> None:
    """Unsupported unless the targets are int64 class indices, the only ones these kernels take."""
    if targets.dtype != torch.int64:
        raise Unsupported(f"{who} takes int64 class indices, not {str(targets.dtype).replace('torch.', '')} targets")


def _per_token(out: Array, hidden: Array, inputs: Inputs) -> Array:
    """A kernel's per-token losses ([N] for [N, D] hidden states, flattened from [B, T, D]) in the batch's own layout."""
    return out.reshape(hidden.shape[:-1]) if inputs.options.reduction == "none" else out


def _flat_tokens(hidden: Array, targets: Array) -> tuple:
    dense = targets.dtype not in (torch.int64, torch.int32)
    if hidden.ndim <= 2:
        return hidden, targets
    return hidden.flatten(0, -2), targets.flatten(0, -2) if dense else targets.flatten()


def linear_then_cross_entropy(hidden: Array, weight: Array, bias: Array | None, targets: Array, inputs: Inputs) -> Array:
    """The composed form: the classifier F.linear materialises the logits, then F.cross_entropy (class axis moved to
    dim 1, as it wants)."""
    logits = F.linear(hidden, weight, bias)
    return F.cross_entropy(_class_first(logits, logits.ndim - 1), _target(targets, inputs), **_loss_kwargs(hidden, inputs))


# The chunked path's precision policies, each with a chunk of 4 rows so that chunking happens on the suite's batches
# (6 and 3 rows: not a multiple of the chunk, and smaller than one), and the zero-argument options (`auto` policy and
# chunking, resolved per device and dtype at call time). Eager only: torch.compile falls back to eager at the chunked op.
LINEAR_CHUNK = 4
LINEAR_POLICIES = ("accurate", "balanced", "compact")


def _chunked(policy: str | None) -> Callable[[], Any]:
    if policy is None:
        return lambda: torch.nn.LinearCrossEntropyOptions()
    return lambda: torch.nn.LinearCrossEntropyOptions(acc_policy=policy, batch_chunk_size=LINEAR_CHUNK, chunking_method=None)


def linear_doors() -> list[Impl]:
    options = frozenset({"reduction", "label_smoothing", "weight", "ignore_index"})
    in_chunks = options - {"label_smoothing"}  # the chunked op runs the reference path instead: not this door
    op = "linear_cross_entropy"
    chunked = [Impl(NAME, f"F.linear_cross_entropy(options=LinearCrossEntropyOptions(acc_policy='{p}', batch_chunk_size={LINEAR_CHUNK}))",
                    op, _linear_ce(_chunked(p)), options=in_chunks, key=f"linear_cross_entropy/chunked-{p}", modes=("eager",))
               for p in LINEAR_POLICIES]
    return [
        Impl(NAME, "torch.nn.functional.linear_cross_entropy", op, _linear_ce(None), options=options, key="linear_cross_entropy"),
        *chunked,
        # its acc_dtype resolves to float32 for half inputs on the CPU and on CUDA SM 8.0+ (LinearCrossEntropyOptions.acc_dtype)
        Impl(NAME, "F.linear_cross_entropy(options=LinearCrossEntropyOptions())", op, _linear_ce(_chunked(None)), options=in_chunks,
             key="linear_cross_entropy/chunked-auto", modes=("eager",), accumulates_in="float32"),
        Impl(NAME, "F.cross_entropy(F.linear(h, W, b), t)", op, linear_then_cross_entropy, options=options, key="linear/cross_entropy"),
    ]


def _installed(module: str, distribution: str) -> Any:
    """An optional package a door calls (an extra: `pip install 'softmax-conformance[fused]'`); Unsupported, saying
    how to install it, where it is absent."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise Unsupported(f"{distribution} is not installed ({exc}); pip install 'softmax-conformance[fused]'") from None


def _cut_cross_entropy(impl_name: str) -> Callable:
    """Apple's Cut Cross-Entropy, `cut_cross_entropy.linear_cross_entropy(e, c, targets, impl=...)`: 'torch_compile' is
    its torch.compile'd reference (runs on the CPU), 'cce' its Triton kernel (CUDA only). It takes no bias and integer
    targets only; its ignore_index defaults to -100 as torch's does."""
    def forward(hidden: Array, weight: Array, bias: Array | None, targets: Array, inputs: Inputs) -> Array:
        if bias is not None:
            raise Unsupported("cut_cross_entropy.linear_cross_entropy takes no bias")
        _class_indices(targets, "cut_cross_entropy.linear_cross_entropy")
        cce = _installed("cut_cross_entropy", "cut-cross-entropy")
        opts = inputs.options
        kwargs = {"reduction": opts.reduction, "impl": impl_name, **({"ignore_index": opts.ignore_index} if opts.ignore_index is not None else {}),
                  **({"softcap": opts.softcap} if opts.softcap is not None else {})}
        return _per_token(cce.linear_cross_entropy(hidden, weight, targets, **kwargs), hidden, inputs)
    return forward


def liger_fused_linear_cross_entropy(hidden: Array, weight: Array, bias: Array | None, targets: Array, inputs: Inputs) -> Array:
    """Liger-Kernel's fused linear cross-entropy (Triton, CUDA only), as its functional API takes it: [N, D] hidden states
    (a [B, T, D] batch flattened, as its model patches do), class weights as ce_weight, z-loss as lse_square_scale."""
    _class_indices(targets, "liger_fused_linear_cross_entropy")
    functional = _installed("liger_kernel.transformers.functional", "liger-kernel")
    opts = inputs.options
    kwargs = {"reduction": opts.reduction, "label_smoothing": opts.label_smoothing, "lse_square_scale": opts.z_loss,
              **({"ignore_index": opts.ignore_index} if opts.ignore_index is not None else {}),
              **({"softcap": opts.softcap} if opts.softcap is not None else {}),
              **({"ce_weight": torch.tensor(opts.weight, dtype=hidden.dtype, device=hidden.device)} if opts.weight is not None else {})}
    flat_hidden, flat_targets = _flat_tokens(hidden, targets)
    out = functional.liger_fused_linear_cross_entropy(flat_hidden, weight, flat_targets, bias=bias, **kwargs)
    return _per_token(out[0] if isinstance(out, tuple) else out, hidden, inputs)


def kernel_doors() -> list[Impl]:
    """The fused linear cross-entropy kernels LLM training runs (optional packages: the `fused` extra): Cut
    Cross-Entropy's CPU-capable torch.compile path, and the Triton kernels of Cut Cross-Entropy and Liger-Kernel,
    which run on a CUDA GPU alone (no records elsewhere; the GPU job runs them). Eager mode: each compiles itself."""
    op, gpu = "linear_cross_entropy", ("gpu",)
    return [
        Impl(NAME, "cut_cross_entropy.linear_cross_entropy(impl='torch_compile')", op, _cut_cross_entropy("torch_compile"),
             options=frozenset({"reduction", "ignore_index", "softcap"}), key="cce/torch_compile", modes=("eager",)),
        Impl(NAME, "cut_cross_entropy.linear_cross_entropy(impl='cce')", op, _cut_cross_entropy("cce"),
             options=frozenset({"reduction", "ignore_index", "softcap"}), key="cce/cce", modes=("eager",), devices=gpu),
        Impl(NAME, "liger_kernel.transformers.functional.liger_fused_linear_cross_entropy", op, liger_fused_linear_cross_entropy,
             options=frozenset({"reduction", "ignore_index", "label_smoothing", "weight", "softcap", "z_loss"}),
             key="liger/fused_linear_cross_entropy", modes=("eager",), devices=gpu),
    ]


NAIVE = naive.Namespace(
    exp=lambda x: torch.exp(x), log=lambda x: torch.log(x), sum=lambda x, axis, keep: x.sum(dim=axis, keepdim=keep),
    softmax=lambda x, axis: torch.softmax(x, dim=axis),
    pick=lambda v, t, axis: torch.gather(v, axis, t.long().unsqueeze(axis)).squeeze(axis),
    spelling="torch.exp torch.sum torch.log torch.softmax")


def implementations() -> list[Impl]:
    ce_options = frozenset({"reduction", "label_smoothing", "weight"})
    doors = [
        Impl(NAME, "torch.softmax", "softmax", softmax, key="softmax"),
        Impl(NAME, "torch.nn.functional.softmax", "softmax", functional_softmax, key="functional/softmax"),
        Impl(NAME, "torch.special.softmax", "softmax", special_softmax, key="special/softmax"),
        Impl(NAME, "torch.nn.functional.log_softmax", "log_softmax", log_softmax, key="log_softmax"),
        Impl(NAME, "torch.special.log_softmax", "log_softmax", special_log_softmax, key="special/log_softmax"),
        Impl(NAME, "torch.logsumexp", "logsumexp", logsumexp, key="logsumexp"),
        Impl(NAME, "torch.special.logsumexp", "logsumexp", special_logsumexp, key="special/logsumexp"),
        Impl(NAME, "torch.nn.functional.cross_entropy", "softmax_cross_entropy", cross_entropy, options=ce_options, key="cross_entropy"),
        Impl(NAME, "torch.nn.functional.cross_entropy", "sparse_softmax_cross_entropy", cross_entropy,
             options=ce_options | {"ignore_index"}, key="sparse_cross_entropy"),
        Impl(NAME, "torch.nn.CrossEntropyLoss()", "softmax_cross_entropy", cross_entropy_module, options=ce_options,
             key="CrossEntropyLoss"),
        Impl(NAME, "torch.nn.CrossEntropyLoss()", "sparse_softmax_cross_entropy", cross_entropy_module,
             options=ce_options | {"ignore_index"}, key="sparse/CrossEntropyLoss"),
        Impl(NAME, "torch.nn.functional.nll_loss(F.log_softmax(x), t)", "sparse_softmax_cross_entropy", nll_of_log_softmax,
             options=frozenset({"reduction", "weight", "ignore_index"}), key="nll_loss/log_softmax"),
        Impl(NAME, "torch.softmax(x.masked_fill(~mask, -inf))", "masked_softmax", masked_fill_softmax, key="masked_fill/softmax"),
        Impl(NAME, "F.log_softmax(x.masked_fill(~mask, -inf))", "masked_log_softmax", masked_fill_log_softmax,
             key="masked_fill/log_softmax"),
    ]
    half = ("float16", "bfloat16")
    in_float32 = [  # half inputs only: on float32 the cast does nothing, on float64 it throws precision away by request
        Impl(NAME, "torch.softmax(x, dim, dtype=torch.float32)", "softmax", softmax_in_float32, key="softmax/dtype-float32", dtypes=half,
             answers_in="float32"),
        Impl(NAME, "F.log_softmax(x, dim, dtype=torch.float32)", "log_softmax", log_softmax_in_float32, key="log_softmax/dtype-float32",
             dtypes=half, answers_in="float32"),
    ]
    return [*doors, *static_shape_doors(doors), *in_float32, *linear_doors(), *kernel_doors(), *naive.implementations(NAME, NAIVE)]


# torch.compile as a fixed-shape training loop gets it: dynamic=False, one graph per input shape. Inductor picks its
# reduction strategy (a persistent reduction or a looped one, its block size, a split reduction over rows) from the
# static sizes, so kernels that the dynamic-shape graph never runs run here. On the suites whose shapes span that
# choice: `shapes` (0 to 2^17 classes, 0 to 1024 rows, class axis first, middle or last) and `model-shapes`
# (sequence-shaped [B, T, V] cross-entropy, 32k to 256k classes in half precision, [B, H, T, T] attention masks).
# Every other suite runs the dynamic-shape graph only: a graph per shape for each of the corpus's cases would
# compile about 2,000 times.
STATIC_SUITES = ("shapes/*", "model-shapes/*")
STATIC_KEYS = ("softmax", "log_softmax", "cross_entropy", "sparse_cross_entropy", "masked_fill/softmax")


def static_shape_doors(doors: list[Impl]) -> list[Impl]:
    """The same public calls as `doors` of STATIC_KEYS, compiled with dynamic=False on STATIC_SUITES only."""
    return [dataclasses.replace(i, name=f"{i.name} [torch.compile(dynamic=False)]", key=f"static/{i.key}", modes=("compiled",),
                                cases=STATIC_SUITES, static_shapes=True) for i in doors if i.key in STATIC_KEYS]


def _torch_device(device: str) -> str:
    return "cuda" if device == "gpu" else "cpu"


def _tensor(array: np.ndarray, device: str, requires_grad: bool = False):
    if array.dtype.name == "bfloat16":  # torch cannot read ml_dtypes arrays; float32 holds every bfloat16 exactly
        t = torch.from_numpy(array.astype(np.float32)).to(torch.bfloat16)
    else:
        t = torch.from_numpy(np.array(array, copy=True, order="C"))  # ascontiguousarray would make 0-d arrays 1-d
    return t.to(device).requires_grad_(requires_grad)


def _numpy(t) -> np.ndarray:
    """The tensor as NumPy in its own dtype (bfloat16 through float32, which holds every bfloat16 exactly)."""
    t = t.detach().cpu()
    return t.float().numpy().astype(bfloat16()) if t.dtype == torch.bfloat16 else t.numpy()


def _forward(impl: Impl, inputs, mode: str, device: str, dynamic: bool | None = None):
    def f(*args):  # the op's primals (op table), then its labels
        out = impl.forward(*args, inputs)
        if impl.reduction_composed(inputs):
            out = reduce_with(out, inputs.options.reduction, torch.sum, torch.mean)
        return out

    if mode == "eager":
        return f
    # Conformance uses dynamic=True: one graph serves every shape of this key (static-then-dynamic would compile
    # twice). Benchmarks use dynamic=False and a function per shape: graphs specialised to it, as a fixed-shape
    # training loop gets them, and no guard on the other shape's closure (`inputs`) to fail and recompile.
    dynamic = not impl.static_shapes if dynamic is None else dynamic
    shapes = tuple(None if a is None else a.shape for a in inputs.primals.values())
    key = (impl.name, impl.op, inputs.options, inputs.axis, inputs.dtype, tuple(s and len(s) for s in shapes), device, dynamic,
           None if dynamic else shapes, impl.whole_graph, _mask_beside_the_labels(inputs))
    if key not in _compiled:
        _headers_in_the_cache()
        _vector_isa_probed_afresh()
        _compiled[key] = torch.compile(f if impl.whole_graph else _split_entry(f), fullgraph=impl.whole_graph, dynamic=dynamic)
    return _compiled[key]


def _mask_beside_the_labels(inputs: Inputs) -> bytes | None:
    """A masked cross-entropy's mask, which a function under check (adapters/user.py) reads from `inputs` (its `where=`
    keyword), not from its arguments: a constant of the compiled function, so each mask gets a function of its own."""
    if not _mask_is_a_constant(inputs):
        return None
    return inputs.mask.shape.__repr__().encode() + np.packbits(inputs.mask).tobytes()


def _mask_is_a_constant(inputs: Inputs) -> bool:
    return inputs.mask is not None and inputs.given_labels is not inputs.mask


def _split_entry(f: Callable) -> Callable:
    """`f` behind a code object of its own: Dynamo keeps compiled code per code object, whatever the fullgraph setting
    of the call that compiled it, so a split compile of the very `f` that a whole-graph door compiles could later
    serve that door, which would then run a split graph without saying so."""
    return lambda *args: f(*args)


def _headers_in_the_cache() -> None:
    """Inductor fixes its precompiled headers' folder at import, from the temporary folder, whatever
    TORCHINDUCTOR_CACHE_DIR says: put them in the run's compile cache too, so that an empty cache is a cold run."""
    cache = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    codecache = sys.modules.get("torch._inductor.codecache") or importlib.import_module("torch._inductor.codecache")
    if cache and hasattr(codecache, "_HEADER_DIR"):
        # $CONFORMANCE_TORCH_HEADERS: one folder for many caches (a test session's runs, each with a cache of its own)
        codecache._HEADER_DIR = os.environ.get(HEADERS_ENV) or os.path.join(cache, "precompiled_headers")
        codecache._HEADER_LOCK_DIR = os.path.join(codecache._HEADER_DIR, "locks")


def _vector_isa_probed_afresh() -> None:
    """Inductor learns which vector instructions it may use by building a small program into the compile cache and
    loading it, once a process; a probe it finds already built but cannot load (a damaged cache) it takes for an ISA
    the machine lacks, and generates scalar code from then on, silently: answers a float32 ulp apart from a cold
    run's. Where the cache's probes find fewer ISAs than the CPU reports, they are run again in a fresh folder of
    their own, as in a cold run (about 6 s, against 1.6 s from a healthy cache); the verdict stays in memory for the
    process (and is probed again after discard_cache)."""
    global _isa_probed
    cache = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    if _isa_probed or not cache:
        return
    _isa_probed = True
    isa = sys.modules.get("torch._inductor.cpu_vec_isa") or importlib.import_module("torch._inductor.cpu_vec_isa")
    if not hasattr(isa, "x86_isa_checker") or not hasattr(isa, "supported_vec_isa_list"):
        return  # another layout of Inductor's: its own probe stands
    flags = isa.x86_isa_checker()
    offered = [v for v in isa.supported_vec_isa_list if all(f in flags for f in str(v).split())]
    if len(isa.valid_vec_isa_list()) >= len(offered):
        return  # every ISA the CPU reports was built and loaded: nothing damaged stands in the way
    _forget_vector_isa(isa)
    with tempfile.TemporaryDirectory(prefix="conformance-isa-") as fresh:
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = fresh
        try:
            isa.valid_vec_isa_list()
        finally:
            os.environ["TORCHINDUCTOR_CACHE_DIR"] = cache


def _forget_vector_isa(isa: Any) -> None:
    """Every memo of Inductor's vector-ISA probes (the list and each ISA's verdict), so that the next asks again."""
    kinds = [isa, *(c for c in vars(isa).values() if isinstance(c, type) and issubclass(c, isa.VecISA))]
    for memo in (m for kind in kinds for m in vars(kind).values() if hasattr(m, "cache_clear")):
        memo.cache_clear()


_isa_probed = False


# Where the precompiled headers go instead of the compile cache: one folder shared by many caches (the test session).
HEADERS_ENV = "CONFORMANCE_TORCH_HEADERS"
# A generated module of Inductor's (its name is the hash of its source) that came from the cache: the message that an
# attribute is missing from one means the file on disk is not the code that was compiled.
_GENERATED_MODULE = re.compile(r"compile_tasks\.c[a-z0-9]{20,}")
# Discarding the cache recompiles everything after it: a worker does it this many times at most, so that a genuine
# compiler error (whose generated code also lives in the cache) cannot make it recompile for ever.
HEALS_PER_WORKER = 3
_heals = 0


# What a damaged file of the cache makes the loader or the compiler say (not what a program's own run raises: a
# compiled kernel's bounds check names its source file in the cache too, and is the framework's answer).
_DAMAGE_WORDS = ("file too short", "invalid ELF header", "not an ELF", "ran out of input", "invalid load key", "unexpected end of")


def cache_damaged(error: BaseException) -> bool:
    """Whether a compiled call failed on a damaged file of the run's compile cache rather than on the program: a
    truncated pickle, a generated module that lacks what was compiled into it, a shared object or source that the
    loader or g++ cannot read."""
    cache = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    if not cache or _heals >= HEALS_PER_WORKER:
        return False
    causes = chain(error)
    text = " ".join(str(x) for x in causes)
    if any(isinstance(x, (EOFError, pickle.UnpicklingError)) for x in causes):
        return True
    if any(isinstance(x, AttributeError) for x in causes) and _GENERATED_MODULE.search(text):
        return True
    if any(isinstance(x, SyntaxError) and cache in str(x.filename or "") for x in causes):
        return True  # a generated module overwritten with garbage: the loader cannot even parse it
    compile_failed = any(type(x).__name__ == "CppCompileError" for x in causes)
    return cache in text and (compile_failed or any(w in text for w in _DAMAGE_WORDS))


def discard_cache(error: BaseException) -> int:
    """Discard the run's Inductor cache (which entry is damaged cannot be told from outside: a regenerated file of
    the same hash would not be written over a damaged one) and every compiled function of this process, so the next
    call compiles afresh. Returns how many cache files were removed."""
    global _heals
    _heals += 1
    cache = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    # not the precompiled headers: Inductor remembers in memory that it built them, and would compile against none
    doomed = [p for p in Path(cache).rglob("*") if p.is_file() and p.suffix != ".lock" and "precompiled_headers" not in p.parts] if cache else []
    for p in doomed:
        p.unlink(missing_ok=True)
    _compiled.clear()
    torch._dynamo.reset()
    global _isa_probed
    isa = sys.modules.get("torch._inductor.cpu_vec_isa")
    if isa is not None and hasattr(isa, "VecISA"):  # a verdict from a damaged probe goes too
        _forget_vector_isa(isa)
        _isa_probed = False
    utils = sys.modules.get("torch._inductor.utils")
    if utils is not None and hasattr(utils, "clear_inductor_caches"):  # the code caches in memory, keyed by the same hashes
        utils.clear_inductor_caches()
    return len(doomed)


def evaluate(impl: Impl, inputs: Inputs, quantities: Iterable[str], mode: str, device: str) -> dict:
    check_supported(impl, inputs)
    try:
        return _evaluate(impl, inputs, quantities, mode, device)
    except RuntimeError as exc:
        # CUDA reports a kernel's device-side assert (an out-of-range class index) asynchronously: at the next
        # synchronisation (the read-back), or at any later call, since the context stays unusable. It is this
        # call's error, or the process's, never the harness's: the record says so instead of losing the worker.
        if "CUDA error" not in str(exc):
            raise
        return {q: exc for q in quantities}


# The calls whose whole-graph compile broke (fullgraph=True refused the function): the function, and what it was
# called on. A door with whole_graph=False compiles those with graph breaks, and skips every other.
_graph_broke: set = set()


def _call_key(impl: Impl, inputs: Inputs, device: str) -> tuple:
    return (impl.forward, impl.op, inputs.options, inputs.axis, inputs.dtype, tuple(a is None or a.ndim for a in inputs.primals.values()), device)


def _graph_break(error: BaseException) -> bool:
    """Whether torch.compile(fullgraph=True) refused the function because it would split it (a graph break)."""
    return any(type(e).__module__.startswith("torch._dynamo") and type(e).__name__ == "Unsupported" for e in chain(error))


def _evaluate(impl: Impl, inputs, quantities, mode: str, device: str) -> dict:
    if mode == "compiled" and not impl.whole_graph and _call_key(impl, inputs, device) not in _graph_broke:
        return {q: NotRun("the function compiles whole: its compiled numerics are the whole-graph records") for q in quantities}
    if mode == "compiled" and not impl.static_shapes:
        _compiled_on_canonical_shapes(impl, inputs, tuple(quantities), device)
    return _call(impl, inputs, quantities, mode, device)


# (call key, quantities, the canonical inputs' shapes): the dynamic-shape graphs compiled on their pattern's own sizes
_canonical_calls: set = set()


def _compiled_on_canonical_shapes(impl: Impl, inputs: Inputs, quantities: tuple, device: str) -> None:
    """Call the compiled function once on `shape_hints.canonical(inputs)` (forward, and every derivative asked for)
    before the case's own call, so that whichever graph serves the case was compiled on its pattern's sizes, not on
    those of the case that happened to come first (shape_hints says why that matters). Its answers are dropped."""
    if _mask_is_a_constant(inputs):  # a mask of its own: its function is the case's
        return
    canonical = shape_hints.canonical(inputs, inputs.options.reduction in impl.fixes_example_sizes)
    if canonical is None:
        return
    # the door's name too: a split-compile door shares its whole-graph twin's forward, not its compiled function
    seen = (impl.name, _call_key(impl, inputs, device), quantities, shape_hints.shapes(canonical))
    if seen in _canonical_calls:
        return
    _canonical_calls.add(seen)
    with contextlib.suppress(Exception):  # the case's own call reports whatever this one raised
        _call(impl, canonical, quantities, "compiled", device)


def _call(impl: Impl, inputs, quantities, mode: str, device: str) -> dict:
    dev = _torch_device(device)
    grad = needs_grad(quantities)
    # the op's primals (the logits; or the hidden states, the weight and a bias), each a leaf with its gradient
    primals = {n: None if a is None else _tensor(a, dev, requires_grad=grad) for n, a in inputs.primals.items()}
    given = inputs.given_labels  # dense or integer labels, a mask, or None (softmax and log_softmax take none)
    labels = None if given is None else _tensor(given, dev, requires_grad="grad_labels" in quantities)
    f = _forward(impl, inputs, mode, device)
    try:
        out = f(*primals.values(), labels)
    except Exception as exc:
        if mode == "compiled" and impl.whole_graph and _graph_break(exc):
            _graph_broke.add(_call_key(impl, inputs, device))  # the function is not the framework's to refuse: its split compile is judged
            why = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
            return {q: Unsupported(f"graph break under torch.compile(fullgraph=True): {why}") for q in quantities}
        return {q: exc for q in quantities}
    results: dict = {}
    if "value" in quantities:
        results["value"] = _numpy(out)
    written = written_into(inputs, primals, labels, _numpy, "forward")
    if not grad:
        return mark_overwritten(results, written)
    results = _gradients(f, inputs, quantities, primals, labels, out, dev, results)
    return mark_overwritten(results, written or written_into(inputs, primals, labels, _numpy, "backward"))


def _gradients(f, inputs: Inputs, quantities, primals: dict, labels, out, dev, results: dict) -> dict:
    g = _tensor(inputs.cotangent, dev)
    wanted = [n for n, t in primals.items() if t is not None and f"grad_{n}" in quantities]
    wrt = [primals[n] for n in wanted] + ([labels] if "grad_labels" in quantities else [])
    # First-order gradients never depend on whether an HVP was also asked for: no create_graph or
    # retain_graph here, because torch.compile's backward (donated buffers) refuses both outright.
    try:
        first = torch.autograd.grad(out, wrt, grad_outputs=g, allow_unused=True) if wrt else ()
    except Exception as exc:
        return {**results, **{q: exc for q in quantities if q != "value"}}
    given = {**inputs.primals, "labels": inputs.labels}
    for name, got in zip([*wanted, *(["labels"] if "grad_labels" in quantities else [])], first):
        results[f"grad_{name}"] = _numpy(got) if got is not None else np.zeros(given[name].shape, np.float64)
    if "hvp" in quantities:
        results["hvp"] = _hvp(f, list(primals.values()), labels, g, _tensor(inputs.direction, dev))
    return results


def _hvp(f, primals: list, labels, g, direction):
    """H·d w.r.t. the first primal as the gradient of <grad_x, d> (H is symmetric), by a double backward through a
    fresh forward."""
    x = primals[0]
    try:
        (grad_x,) = torch.autograd.grad(f(*primals, labels), x, grad_outputs=g, create_graph=True)
        if not grad_x.requires_grad:  # a backward outside autograd's graph (a precomputed gradient): no second one
            return Unsupported("create_graph=True gave a first derivative with no graph: this function offers no double backward")
        (hv,) = torch.autograd.grad(grad_x, x, grad_outputs=direction, allow_unused=True)
    except RuntimeError as exc:
        text = str(exc)
        # torch.compile (AOTAutograd) does not offer it; a custom Function's backward marked @once_differentiable neither
        if "double backward" in text or "create_graph" in text or "differentiate twice" in text:
            return Unsupported(text.splitlines()[0])
        return exc
    return _numpy(hv) if hv is not None else np.zeros(tuple(x.shape), np.float64)


def _sync(dev: str):
    return torch.cuda.synchronize if dev == "cuda" else no_sync


def benchmark_call(impl: Impl, inputs: Inputs, mode: str, device: str, backward: bool) -> Callable[[], Any]:
    """A zero-argument callable: `impl` on tensors already on the device (forward, or forward and the gradient
    w.r.t. the logits), returning once the result exists (CUDA synchronised)."""
    check_supported(impl, inputs)
    dev = _torch_device(device)
    args = _call_tensors(inputs, dev, backward)
    return _timed(_forward(impl, inputs, mode, device, dynamic=False), args, inputs, dev, backward)


def _call_tensors(inputs: Inputs, dev: str, backward: bool) -> list:
    """The op's primals (every one differentiated in a backward pass, as a training step does) and its labels, on the device."""
    primals = [None if a is None else _tensor(a, dev, requires_grad=backward) for a in inputs.primals.values()]
    return [*primals, None if inputs.given_labels is None else _tensor(inputs.given_labels, dev)]


def bare_call(impl: Impl, inputs: Inputs, mode: str, device: str, backward: bool) -> Callable[[], Any]:
    """The public call with nothing of the harness around it, written out as a user would (for the overhead table):
    the function itself, its mean where the public function has no reduction, torch.compile for compiled mode, and
    torch.autograd.grad for the backward pass, on tensors already on the device."""
    check_supported(impl, inputs)
    dev = _torch_device(device)
    args = _call_tensors(inputs, dev, backward)
    composed = impl.reduction_composed(inputs)

    def f(*args):
        out = impl.forward(*args, inputs)
        return out.mean() if composed else out

    f = torch.compile(f, fullgraph=True, dynamic=False) if mode == "compiled" else f
    return _timed(f, args, inputs, dev, backward)


def _timed(f, args: list, inputs, dev, backward: bool):
    """What the benchmarks time: f(*args) (the primals, then the labels), and for the backward pass
    torch.autograd.grad w.r.t. every primal with the cotangent already on the device, synchronised so that the
    result exists when the call returns."""
    sync = _sync(dev)
    if not backward:
        return synced_forward(f, args, sync)
    g = _tensor(inputs.cotangent, dev)

    wrt = [a for a in args[:-1] if a is not None]

    def forward_backward():
        grads = torch.autograd.grad(f(*args), wrt, grad_outputs=g)
        sync()
        return grads if len(grads) > 1 else grads[0]
    return forward_backward


def forget_compiled() -> None:
    """Drop every compiled callable, so that the next call compiles afresh: in one process, a function under check
    (adapters/user.py) replaced by another keeps its implementation's name and would otherwise reuse the first one's,
    and its calls whose whole-graph compile broke."""
    _compiled.clear()
    _graph_broke.clear()
    _canonical_calls.clear()
    if torch is not None:  # loaded: the compiled code of the function replaced, kept per code object (of its frames too)
        torch._dynamo.reset()
