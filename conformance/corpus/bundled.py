"""The data that ships inside the package: the case corpus, the known-divergence registry and the case-file schema.

They are read through `importlib.resources`, so a checkout and an installed wheel find them the same way, whatever
the current folder. On the command line the word `bundled` names them (`--cases bundled --cases mine/` runs the
bundled corpus and a project's own cases; `--known bundled --known ours.yaml` adds entries to the bundled registry).
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

# The word that names the bundled corpus (with --cases) or the bundled registry (with --known).
WORD = "bundled"


def _path(*parts: str) -> Path:
    # A wheel installed by pip is unpacked, so the package's resources are files on disk; a zipped install
    # (zipimport) has no paths to give the workers, which read case files by path, so it is refused in one line.
    resource = files("conformance.corpus").joinpath("data", *parts)
    path = Path(str(resource))
    if not path.exists():
        raise FileNotFoundError(f"the bundled {'/'.join(parts)} is not in this installation of softmax-conformance ({path})")
    return path


def cases_dir() -> Path:
    """The bundled corpus: one suite per *.yaml file."""
    return _path("cases")


def registry_file() -> Path:
    """The bundled known-divergence registry."""
    return _path("known", "divergences.yaml")


def schema_file() -> Path:
    """The JSON Schema of case files."""
    return Path(str(files("conformance.corpus").joinpath("schema", "case-file.schema.json")))


def resolve(paths: list[Path] | None, default: Path) -> list[Path]:
    """Command-line paths with the word `bundled` replaced by `default` (the bundled corpus or registry); none given:
    the default alone. A real folder or file named `bundled` is written `./bundled`."""
    if not paths:
        return [default]
    return [default if str(p) == WORD else Path(p) for p in paths]


def is_bundled_case_file(path: str | Path) -> bool:
    """Whether a case file is one of the bundled corpus's (a repro command then needs no --cases)."""
    try:
        return Path(path).resolve().parent == cases_dir().resolve()
    except (OSError, FileNotFoundError):
        return False


# `conformance run --quick`: a few cases of each kind, small enough that every framework, op and mode answers in about
# two minutes cold (docs/performance.md): the published values of the classic question (the softmax, and the mean
# cross-entropy, whose grad_logits is a mean's gradient; the sparse form of that mean is the full run's: its own graphs
# under every compiler cost about 20 worker-seconds), rows of +1000 and -1000 (overflow and underflow, each row's own
# max), a masked NaN and a fully masked row (the masked ops, a silent answer), masked logits of +-1e30 (the masked
# cross-entropies), a NaN logit and a label past the classes (invalid input), a logsumexp just past exp's range, and
# the fused linear cross-entropy on a batch smaller than a chunk. Every case but three has 2 rows of 3 classes (not:
# the published 4-logit softmax, the linear cross-entropy, the [1, 8] mask over 3 rows): each new shape is a new
# program for every compiler (a graph, a kernel, or an eager mode's op-by-op compiles), so a cold run's cost grows
# with the shapes, not the records (one shape for all cost 20-40% less than one per case: docs/performance.md).
QUICK_CASES = ("published-values/softmax-four-logits", "published-values/mean-cross-entropy-two-rows",
               "extreme-logits/huge-rows-of-opposite-sign", "masked-softmax/masked-entry-holds-nan",
               "masked-softmax/fully-masked-row", "invalid-input/nan-logit", "sparse-labels/out-of-range-equal-to-classes",
               "linear-cross-entropy/batch-smaller-than-a-chunk", "logsumexp/float32-just-past-exp",
               "masked-cross-entropy/shared-class-mask")  # every op (tests/test_selection.py)
QUICK_DTYPES = ("float32",)
QUICK_QUANTITIES = ("value", "grad_logits", "grad_hidden", "grad_weight")  # the value and the first derivatives of every op
