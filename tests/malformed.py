"""A generated corpus of malformed inputs: case files and results files that break the format in every field and
every way we know of (wrong types, out-of-range values, generators that cannot run, YAML that explodes, bytes that
are not text), each with the words its one-line error must contain.

`python tests/malformed.py DIR` writes them out for a look; tests/test_malformed.py runs every one through the CLI.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml


@dataclass(frozen=True)
class Bad:
    name: str
    content: bytes
    needle: str  # what the one-line message must say (the field, or the problem)


GOOD_CASE = {"id": "c", "description": "d", "ops": ["softmax"], "logits": [[0.0, 1.0]]}
GOOD_CE = {"id": "c", "description": "d", "ops": ["softmax_cross_entropy"], "logits": [[0.0, 1.0]], "labels": [[0.0, 1.0]]}
GOOD_SPARSE = {"id": "c", "description": "d", "ops": ["sparse_softmax_cross_entropy"], "logits": [[0.0, 1.0]], "sparse_labels": [1]}


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data):  # the same dict twice is written out twice, not as an alias
        return True


def _doc(*cases: dict, **top) -> bytes:
    return yaml.dump({"suite": "s", "description": "x", **top, "cases": list(cases)}, Dumper=_Dumper, sort_keys=False).encode()


def _with(base: dict, **changes) -> dict:
    out = {**base, **changes}
    return {k: v for k, v in out.items() if v is not _DROP}


_DROP = object()

# generator faults: (label, mapping, needle)
GENERATOR_FAULTS = [
    ("unknown", {"generate": "gaussian", "shape": [2, 3], "seed": 0}, "unknown generator 'gaussian'"),
    ("no-seed", {"generate": "normal", "shape": [2, 3]}, "'seed' is required"),
    ("bool-seed", {"generate": "normal", "shape": [2, 3], "seed": True}, "'seed' is required"),
    ("negative-seed", {"generate": "normal", "shape": [2, 3], "seed": -1}, "'seed' is required"),
    ("float-seed", {"generate": "normal", "shape": [2, 3], "seed": 1.5}, "'seed' is required"),
    ("huge-seed", {"generate": "normal", "shape": [2, 3], "seed": 2 ** 70}, "'seed' is required"),
    ("scale-string", {"generate": "normal", "shape": [2, 3], "seed": 0, "scale": "big"}, "'scale' must be a number"),
    ("scale-inf", {"generate": "normal", "shape": [2, 3], "seed": 0, "scale": float("inf")}, "'scale' must be finite"),
    ("loc-nan", {"generate": "normal", "shape": [2, 3], "seed": 0, "loc": float("nan")}, "'loc' must be finite"),
    ("uniform-inf", {"generate": "uniform", "shape": [2, 3], "seed": 0, "high": float("inf")}, "'high' must be finite"),
    ("uniform-huge", {"generate": "uniform", "shape": [2, 3], "seed": 0, "low": 10 ** 400}, "'low' is too large"),
    ("extra-field", {"generate": "normal", "shape": [2, 3], "seed": 0, "sigma": 2}, "has no field 'sigma'"),
    ("alpha-negative", {"generate": "dirichlet", "shape": [2, 3], "seed": 0, "alpha": -1}, "'alpha' must be positive"),
    ("classes-zero", {"generate": "class_indices", "shape": [2], "seed": 0, "classes": 0}, "'classes' must be a positive integer"),
    ("generate-list", {"generate": ["normal"], "shape": [2, 3], "seed": 0}, "unknown generator"),
]
SHAPE_FAULTS = [
    ("shape-huge", [100000, 100000], "over the limit"),
    ("shape-bool", [True, 3], "'shape' must be a list"),
    ("shape-negative", [-1, 3], "'shape' must be a list"),
    ("shape-float", [2.5, 3], "'shape' must be a list"),
    ("shape-string", "2x3", "'shape' must be a list"),
    ("shape-rank-9", [1] * 9, "'shape' must be a list"),
    ("shape-missing", None, "'shape' must be a list"),
]


def case_files() -> Iterator[Bad]:
    # --- bytes and YAML that are not a case file at all
    yield Bad("empty.yaml", b"", "must be a mapping")
    yield Bad("not-utf8.yaml", b"suite: s\ncases:\n  - id: \xff\xfe\n", "not UTF-8")
    yield Bad("latin1.yaml", "suite: café\n".encode("latin-1"), "not UTF-8")
    yield Bad("binary.yaml", bytes(range(256)), "not UTF-8")
    yield Bad("bad-yaml.yaml", b"suite: s\ncases: [\n", "not valid YAML")
    yield Bad("tabs.yaml", b"suite: s\ncases:\n\t- id: a\n", "not valid YAML")
    yield Bad("scalar.yaml", b"42\n", "must be a mapping")
    yield Bad("list.yaml", b"- 1\n- 2\n", "must be a mapping")
    # the fused linear cross-entropy: the logits it forms count against the same limit as given logits
    yield Bad("linear-logits-huge.yaml", b"suite: s\ndescription: d\ncases:\n  - id: c\n    description: d\n    ops: [linear_cross_entropy]\n"
              b"    hidden: {generate: normal, shape: [4000000, 1], seed: 1}\n    weight: {generate: normal, shape: [4000000, 1], seed: 2}\n"
              b"    sparse_labels: {generate: class_indices, shape: [4000000], classes: 4000000, seed: 3}\n", "over the limit")
    yield Bad("deep-5000.yaml", b"suite: s\ncases: " + b"[" * 5000 + b"]" * 5000 + b"\n", "nested deeper")
    yield Bad("deep-map.yaml", b"suite: s\ncases:\n" + b"".join(b"  " * i + b"a:\n" for i in range(1, 60)) + b"  " * 60 + b"b: 1\n",
              "nested deeper")
    yield Bad("null-key.yaml", b"suite: s\nnull: 1\ncases: []\n", "key None is not a string")
    yield Bad("int-key.yaml", b"suite: s\n1: 1\ncases: []\n", "key 1 is not a string")
    yield Bad("mixed-keys.yaml", b"suite: s\ncases:\n  - {id: a, 3: x, description: d, ops: [softmax], logits: [1.0]}\n", "key 3 is not a string")
    yield Bad("dup-top.yaml", b"suite: s\nsuite: t\ncases: []\n", "duplicate key 'suite'")
    yield Bad("dup-case-key.yaml", b"suite: s\ncases:\n  - {id: a, id: b, description: d, ops: [softmax], logits: [1.0]}\n", "duplicate key 'id'")
    yield Bad("dup-options.yaml", b"suite: s\ncases:\n  - id: a\n    description: d\n    ops: [softmax_cross_entropy]\n    logits: [[1.0, 2.0]]\n"
              b"    labels: [[0.0, 1.0]]\n    options: {reduction: sum, reduction: mean}\n", "duplicate key 'reduction'")
    yield Bad("merge-key.yaml", b"base: &b {id: a}\nsuite: s\ncases:\n  - <<: *b\n", "aliases")
    yield Bad("big.yaml", b"suite: s\ndescription: " + b"x" * (11 * 1024 * 1024) + b"\n", "over the 10 MB limit")
    for field in ("logits", "labels", "sparse_labels", "expect"):
        bomb = b"a: &a [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]\n"
        for i, prev in zip("bcdefgh", "abcdefg"):
            bomb += f"{i}: &{i} [{', '.join(['*' + prev] * 9)}]\n".encode()
        value = b"{value: *h}" if field == "expect" else b"*h"
        yield Bad(f"alias-bomb-{field}.yaml", bomb + b"suite: s\ncases:\n  - id: a\n    description: d\n    ops: [softmax]\n    logits: [1.0]\n"
                  + f"    {field}: ".encode() + value + b"\n", "aliases")
    yield Bad("alias-small.yaml", b"x: &x [1.0, 2.0]\nsuite: s\ncases:\n  - {id: a, description: d, ops: [softmax], logits: *x}\n", "aliases")
    # --- the top level
    yield Bad("no-suite.yaml", yaml.safe_dump({"cases": [GOOD_CASE]}).encode(), "field 'suite'")
    yield Bad("suite-int.yaml", _doc(GOOD_CASE, suite=3), "field 'suite'")
    yield Bad("suite-slash.yaml", _doc(GOOD_CASE, suite="a/b"), "field 'suite'")
    yield Bad("suite-empty.yaml", _doc(GOOD_CASE, suite=""), "field 'suite'")
    yield Bad("suite-too-long.yaml", _doc(GOOD_CASE, suite="s" * 201), "field 'suite'")
    for label, ch in (("newline", "\n"), ("ansi", "\x1b[31m"), ("nul", "\x00"), ("del", "\x7f"), ("zero-width", "\u200b"), ("bidi", "\u202e"),
                      ("tab", "\t"), ("cr", "\r"), ("nel", "\x85"), ("csi", "\x9b"), ("line-separator", "\u2028"), ("paragraph-separator", "\u2029")):
        yield Bad(f"suite-{label}.yaml", _doc(GOOD_CASE, suite=f"s{ch}x"), "field 'suite'")
        yield Bad(f"id-{label}.yaml", _doc(_with(GOOD_CASE, id=f"a{ch}b")), "field 'id'")
    yield Bad("unknown-top.yaml", _doc(GOOD_CASE, extra=1), "field 'extra'")
    yield Bad("defaults-list.yaml", _doc(GOOD_CASE, defaults=[1]), "field 'defaults'")
    yield Bad("cases-missing.yaml", yaml.safe_dump({"suite": "s"}).encode(), "field 'cases'")
    yield Bad("cases-empty.yaml", _doc(), "field 'cases'")
    yield Bad("cases-mapping.yaml", yaml.safe_dump({"suite": "s", "cases": {"a": 1}}).encode(), "field 'cases'")
    yield Bad("case-not-mapping.yaml", yaml.safe_dump({"suite": "s", "cases": [1]}).encode(), "each case must be a mapping")
    yield Bad("defaults-bad-dtype.yaml", _doc(GOOD_CASE, defaults={"dtypes": ["float8"]}), "field 'dtypes'")
    yield Bad("defaults-unknown.yaml", _doc(GOOD_CASE, defaults={"colour": "red"}), "field 'colour'")
    # a default that every case overrides is still checked: the next case added would inherit it
    yield Bad("defaults-unused-bad-dtype.yaml", _doc(_with(GOOD_CASE, dtypes=["float32"]), defaults={"dtypes": ["float8"]}), "field 'dtypes'")
    yield Bad("defaults-unused-bad-option.yaml", _doc(GOOD_CASE, defaults={"options": {"reduction": "avg"}}), "reduction")
    yield Bad("defaults-id.yaml", _doc(GOOD_CASE, defaults={"id": "x"}), "field 'id'")
    for name in (".", ".."):  # path components: the report writes a page per suite
        yield Bad(f"suite-dots-{len(name)}.yaml", _doc(GOOD_CASE, suite=name), "field 'suite'")
        yield Bad(f"id-dots-{len(name)}.yaml", _doc(_with(GOOD_CASE, id=name)), "field 'id'")
    for gen in ("one_hot", "dirichlet"):  # zero classes: a draw of two elements would not see it
        yield Bad(f"{gen}-zero-classes.yaml", _doc(_with(GOOD_CE, logits={"generate": "normal", "shape": [3, 0], "seed": 0},
                                                         labels={"generate": gen, "shape": [3, 0], "seed": 1})), "at least one class")
    # --- identity and description
    yield Bad("id-missing.yaml", _doc(_with(GOOD_CASE, id=_DROP)), "field 'id'")
    yield Bad("id-int.yaml", _doc(_with(GOOD_CASE, id=7)), "field 'id'")
    yield Bad("id-slash.yaml", _doc(_with(GOOD_CASE, id="a/b")), "field 'id'")
    yield Bad("id-empty.yaml", _doc(_with(GOOD_CASE, id="")), "field 'id'")
    yield Bad("id-too-long.yaml", _doc(_with(GOOD_CASE, id="a" * 201)), "field 'id'")
    yield Bad("id-duplicate.yaml", _doc(GOOD_CASE, GOOD_CASE), "duplicate id")
    yield Bad("description-missing.yaml", _doc(_with(GOOD_CASE, description=_DROP)), "field 'description'")
    yield Bad("description-blank.yaml", _doc(_with(GOOD_CASE, description="  ")), "field 'description'")
    yield Bad("description-list.yaml", _doc(_with(GOOD_CASE, description=["a"])), "field 'description'")
    yield Bad("source-int.yaml", _doc(_with(GOOD_CASE, source=3)), "field 'source'")
    yield Bad("unknown-field.yaml", _doc(_with(GOOD_CASE, colour="red")), "field 'colour'")
    yield Bad("tags-string.yaml", _doc(_with(GOOD_CASE, tags="a")), "field 'tags'")
    yield Bad("invalid-string.yaml", _doc(_with(GOOD_CASE, invalid="yes please")), "field 'invalid'")
    # --- ops, dtypes, quantities
    for field, good in (("ops", "softmax"), ("dtypes", "float32"), ("quantities", "value")):
        yield Bad(f"{field}-unknown.yaml", _doc(_with(GOOD_CASE, **{field: ["nope"]})), f"field '{field}'")
        yield Bad(f"{field}-duplicate.yaml", _doc(_with(GOOD_CASE, **{field: [good, good]})), "listed twice")
        yield Bad(f"{field}-empty.yaml", _doc(_with(GOOD_CASE, **{field: []})), f"field '{field}'")
        yield Bad(f"{field}-int.yaml", _doc(_with(GOOD_CASE, **{field: 3})), f"field '{field}'")
        yield Bad(f"{field}-nested.yaml", _doc(_with(GOOD_CASE, **{field: [[good]]})), f"field '{field}'")
        yield Bad(f"{field}-null-item.yaml", _doc(_with(GOOD_CASE, **{field: [None]})), f"field '{field}'")
    yield Bad("ops-missing.yaml", _doc(_with(GOOD_CASE, ops=_DROP)), "field 'ops'")
    yield Bad("quantity-not-applicable.yaml", _doc(_with(GOOD_CASE, quantities=["grad_labels"])), "grad_labels applies to none")
    yield Bad("quantity-log-softmax-labels.yaml", _doc(_with(GOOD_CASE, ops=["log_softmax"], quantities=["grad_labels"])), "grad_labels applies to none")
    yield Bad("quantity-none-for-softmax.yaml", _doc(_with(GOOD_CE, ops=["softmax", "softmax_cross_entropy"], quantities=["grad_labels"])),
              "none applies to softmax")
    yield Bad("quantity-sparse-labels.yaml", _doc(_with(GOOD_SPARSE, quantities=["value", "grad_labels"])), "grad_labels applies to none")
    # --- arrays: literal faults in every array field
    for field, base in (("logits", GOOD_CASE), ("labels", GOOD_CE), ("sparse_labels", GOOD_SPARSE)):
        literal_faults = [
            ("ragged", [[0.0, 1.0], [2.0]] if field != "sparse_labels" else [[1], [0, 1]], "not rectangular"),
            ("bool", [[True, False]] if field != "sparse_labels" else [True], "is not a number"),
            ("string", [["one", 1.0]] if field != "sparse_labels" else ["one"], "is not"),
            ("null", [[None, 1.0]] if field != "sparse_labels" else [None], "is not a number"),
            ("mapping-item", [[{"a": 1}, 1.0]] if field != "sparse_labels" else [{"a": 1}], "is not a number"),
            ("scalar", 3.0 if field != "sparse_labels" else 3, "must be a nested list or a generator"),
            ("text", "0 1 2", "must be a nested list or a generator"),
            ("exponent-string", [["1.0e30", 1.0]] if field != "sparse_labels" else ["1e3"], "is not"),
        ]
        for label, value, needle in literal_faults:
            yield Bad(f"{field}-{label}.yaml", _doc(_with(base, **{field: value})), needle)
        for label, spec, needle in GENERATOR_FAULTS:
            if field == "sparse_labels" and label not in ("unknown", "no-seed", "bool-seed", "classes-zero", "extra-field", "generate-list"):
                continue
            shape = [1] if field == "sparse_labels" else [1, 2]
            spec = {**spec, "shape": shape} if "shape" in spec else spec
            if field == "sparse_labels" and spec.get("generate") == "normal":
                spec = {**spec, "generate": "class_indices", "classes": 2}
            yield Bad(f"{field}-generator-{label}.yaml", _doc(_with(base, **{field: spec})), needle)
        for label, shape, needle in SHAPE_FAULTS:
            spec = {"generate": "class_indices" if field == "sparse_labels" else "normal", "seed": 0, "classes": 2}
            if field != "sparse_labels":
                spec.pop("classes")
            if shape is not None:
                spec["shape"] = shape
            yield Bad(f"{field}-{label}.yaml", _doc(_with(base, **{field: spec})), needle)
    yield Bad("logits-missing.yaml", _doc(_with(GOOD_CASE, logits=_DROP)), "field 'logits'")
    yield Bad("logits-rank-0.yaml", _doc(_with(GOOD_CASE, logits={"generate": "normal", "shape": [], "seed": 0})), "field 'logits'")
    yield Bad("labels-missing.yaml", _doc(_with(GOOD_CE, labels=_DROP)), "needs dense labels")
    yield Bad("labels-shape.yaml", _doc(_with(GOOD_CE, labels=[[0.0, 0.5, 0.5]])), "differs from logits")
    yield Bad("sparse-missing.yaml", _doc(_with(GOOD_SPARSE, sparse_labels=_DROP)), "needs integer sparse_labels")
    yield Bad("sparse-float.yaml", _doc(_with(GOOD_SPARSE, sparse_labels=[1.0])), "field 'sparse_labels'")
    yield Bad("sparse-shape.yaml", _doc(_with(GOOD_SPARSE, sparse_labels=[1, 0])), "should be [1]")
    yield Bad("sparse-2-pow-70.yaml", _doc(_with(GOOD_SPARSE, sparse_labels=[2 ** 70])), "does not fit a 64-bit integer")
    yield Bad("sparse-int32-wrap.yaml", _doc(_with(GOOD_SPARSE, sparse_labels=[2 ** 40], options={"label_dtype": "int32"})), "does not fit label_dtype int32")
    yield Bad("sparse-normal-generator.yaml", _doc(_with(GOOD_SPARSE, sparse_labels={"generate": "normal", "shape": [1], "seed": 0})), "must hold integers")
    # --- cotangent and direction: checked at load, not half way through a run
    for field in ("cotangent", "direction"):
        for label, spec, needle in GENERATOR_FAULTS:
            spec = {k: v for k, v in spec.items() if k != "shape"}
            yield Bad(f"{field}-{label}.yaml", _doc(_with(GOOD_CASE, quantities=["value", "grad_logits", "hvp"], **{field: spec})), needle)
        yield Bad(f"{field}-with-shape.yaml", _doc(_with(GOOD_CASE, **{field: {"generate": "normal", "seed": 0, "shape": [1, 2]}})), "takes no 'shape'")
        yield Bad(f"{field}-string.yaml", _doc(_with(GOOD_CASE, **{field: "zeros"})), f"field '{field}'")
        yield Bad(f"{field}-list.yaml", _doc(_with(GOOD_CASE, **{field: [1.0, 2.0]})), f"field '{field}'")
    yield Bad("direction-ones.yaml", _doc(_with(GOOD_CASE, direction="ones")), "field 'direction'")
    # --- axis
    for label, value in (("bool", True), ("string", "last"), ("float", 1.0), ("out-of-range", 2), ("huge", 10 ** 30), ("negative", -3)):
        yield Bad(f"axis-{label}.yaml", _doc(_with(GOOD_CASE, axis=value)), "field 'axis'")
    # --- options
    ce_options = [
        ("options-list", [1], "field 'options'"),
        ("options-unknown", {"temperature": 2}, "options.temperature"),
        ("reduction-bad", {"reduction": "max"}, "options.reduction"),
        ("reduction-int", {"reduction": 1}, "options.reduction"),
        ("smoothing-negative", {"label_smoothing": -0.1}, "options.label_smoothing"),
        ("smoothing-big", {"label_smoothing": 1.5}, "options.label_smoothing"),
        ("smoothing-string", {"label_smoothing": "0.1"}, "options.label_smoothing"),
        ("smoothing-bool", {"label_smoothing": True}, "options.label_smoothing"),
        ("weight-length", {"weight": [1.0]}, "options.weight"),
        ("weight-string", {"weight": ["a", 1.0]}, "options.weight"),
        ("weight-inf", {"weight": [float("inf"), 1.0]}, "options.weight"),
        ("weight-nested", {"weight": [[1.0], [1.0]]}, "options.weight"),
        ("weight-bool", {"weight": [True, 1.0]}, "options.weight"),
        ("ignore-on-dense", {"ignore_index": 0}, "options.ignore_index"),
        ("label-dtype-bad", {"label_dtype": "int8"}, "options.label_dtype"),
    ]
    for label, options, needle in ce_options:
        yield Bad(f"{label}.yaml", _doc(_with(GOOD_CE, options=options)), needle)
    for label, options, needle in ce_options:
        if label != "ignore-on-dense":
            yield Bad(f"sparse-{label}.yaml", _doc(_with(GOOD_SPARSE, options=options)), needle)
    for label, spec, needle in GENERATOR_FAULTS:  # file defaults are checked like the case's own fields
        spec = {**spec, "shape": [1, 2]} if "shape" in spec else spec
        yield Bad(f"defaults-logits-{label}.yaml", _doc(_with(GOOD_CASE, logits=_DROP), defaults={"logits": spec}), needle)
        yield Bad(f"defaults-labels-{label}.yaml", _doc(_with(GOOD_CE, labels=_DROP), defaults={"labels": spec}), needle)
    for field in ("ops", "dtypes", "quantities"):
        yield Bad(f"defaults-{field}-unknown.yaml", _doc(_with(GOOD_CASE, **{field: _DROP}), defaults={field: ["nope"]}), f"field '{field}'")
    for label, options, needle in (("ignore-float", {"ignore_index": 1.5}, "options.ignore_index"),
                                   ("ignore-bool", {"ignore_index": True}, "options.ignore_index"),
                                   ("ignore-huge", {"ignore_index": 2 ** 40, "label_dtype": "int32"}, "options.ignore_index"),
                                   ("label-dtype-list", {"label_dtype": ["int32"]}, "options.label_dtype")):
        yield Bad(f"{label}.yaml", _doc(_with(GOOD_SPARSE, options=options)), needle)
    yield Bad("options-on-softmax.yaml", _doc(_with(GOOD_CASE, options={"reduction": "sum"})), "field 'options'")
    # --- expect
    for label, expect, needle in (("expect-list", [1], "field 'expect'"), ("expect-unknown", {"values": [1.0]}, "expect.values"),
                                  ("expect-behaviour", {"behaviour": "explodes"}, "expect.behaviour"),
                                  ("expect-value-string", {"value": ["big"]}, "expect.value"),
                                  ("expect-value-ragged", {"value": [[1.0], [1.0, 2.0]]}, "expect.value"),
                                  ("expect-value-bool", {"value": [True]}, "expect.value"),
                                  ("expect-value-generator", {"value": {"generate": "normal", "shape": [2], "seed": 0}}, "expect.value"),
                                  ("expect-value-null", {"value": [None]}, "expect.value"),
                                  ("expect-grad-string", {"grad_logits": "zero"}, "expect.grad_logits")):
        yield Bad(f"{label}.yaml", _doc(_with(GOOD_CASE, expect=expect)), needle)
    # --- mask (masked_softmax / masked_log_softmax)
    masked = {"id": "c", "description": "d", "ops": ["masked_softmax"], "logits": [[0.0, 1.0]], "mask": [[True, False]]}
    for label, changes, needle in (
            ("mask-missing", {"mask": _DROP}, "needs a mask"),
            ("mask-on-softmax", {"ops": ["softmax"]},
             "applies to masked_softmax, masked_log_softmax, masked_softmax_cross_entropy and masked_sparse_softmax_cross_entropy only"),
            ("mask-with-softmax", {"ops": ["masked_softmax", "softmax"]}, "applies to masked_softmax"),
            ("mask-two", {"mask": [[1, 2]]}, "must hold true/false"),
            ("mask-float", {"mask": [[0.5, 1.0]]}, "field 'mask'"),
            ("mask-string", {"mask": [["yes", True]]}, "field 'mask'"),
            ("mask-ragged", {"mask": [[True], [True, False]]}, "not rectangular"),
            ("mask-scalar", {"mask": True}, "field 'mask'"),
            ("mask-not-broadcast", {"mask": [[True, False, True]]}, "does not broadcast to logits"),
            ("mask-too-many-dims", {"mask": [[[True, False]], [[True, True]]]}, "does not broadcast to logits"),
            ("mask-normal-generator", {"mask": {"generate": "normal", "shape": [1, 2], "seed": 0}}, "bernoulli"),
            ("mask-bernoulli-p", {"mask": {"generate": "bernoulli", "shape": [1, 2], "seed": 0, "p": 2}}, "'p' must be in [0, 1]"),
            ("mask-bernoulli-unseeded", {"mask": {"generate": "bernoulli", "shape": [1, 2]}}, "'seed' is required")):
        yield Bad(f"{label}.yaml", _doc(_with(masked, **changes)), needle)


def results_files(good: dict) -> Iterator[Bad]:
    """Broken results files, each from a good document with one thing wrong."""
    def doc(**changes) -> bytes:
        d = json.loads(json.dumps(good))
        for path, value in changes.items():
            target = d
            *head, last = path.split(".")
            for part in head:
                target = target[int(part)] if part.isdigit() else target[part]
            if value is _DROP:
                del target[int(last) if last.isdigit() else last]
            elif last.isdigit():
                target[int(last)] = value
            else:
                target[last] = value
        return json.dumps(d).encode()

    yield Bad("junk.json", b"{not json", "not valid JSON")
    yield Bad("empty.json", b"", "not valid JSON")
    yield Bad("not-utf8.json", b'{"schema": "\xff"}', "not UTF-8")
    yield Bad("deep.json", b"[" * 100000 + b"]" * 100000, "nested too deeply")
    yield Bad("list.json", b"[]", "not a results file")
    yield Bad("schema-wrong.json", doc(schema="other/1"), "not a results file")
    yield Bad("schema-missing.json", doc(schema=_DROP), "not a results file")
    yield Bad("records-missing.json", doc(records=_DROP), "'records' must be a list")
    yield Bad("records-dict.json", doc(records={}), "'records' must be a list")
    yield Bad("records-int-item.json", doc(records=[1]), "record 0 is not an object")
    yield Bad("records-null-item.json", doc(records=[None]), "record 0 is not an object")
    for field in ("case", "op", "quantity", "dtype", "framework", "impl", "mode", "device", "status", "behaviour", "max_abs_err",
                  "max_rel_err", "max_ulp", "size", "nan_count", "inf_count", "error", "known"):
        yield Bad(f"record-lacks-{field}.json", doc(**{f"records.0.{field}": _DROP}), f"record 0 lacks {field}")
    for field, value in (("case", 3), ("op", None), ("framework", ["jax"]), ("impl", {}), ("status", {"x": 1}), ("behaviour", 1),
                         ("max_ulp", "big"), ("max_abs_err", [1]), ("tol_ratio", "0.5"), ("size", 1.5), ("nan_count", "0"),
                         ("inf_count", None), ("error", "boom"), ("known", 1), ("detail", 3), ("naive", "no"), ("size", True)):
        yield Bad(f"record-{field}-{type(value).__name__}.json", doc(**{f"records.0.{field}": value}), f"field '{field}'")
    yield Bad("status-unknown.json", doc(**{"records.0.status": "great"}), "status 'great'")
    yield Bad("environment-list.json", doc(environment=[]), "'environment' must be")
    yield Bad("frameworks-list.json", doc(**{"environment.frameworks": []}), "environment.frameworks")
    yield Bad("frameworks-str-value.json", doc(**{"environment.frameworks": {"jax": "0.10"}}), "environment.frameworks")
    yield Bad("stale-string.json", doc(stale_known="abc"), "'stale_known' must be")
    yield Bad("stale-int-item.json", doc(stale_known=[1]), "'stale_known' must be a list of objects")
    yield Bad("stale-no-id.json", doc(stale_known=[{"link": "x"}]), "'stale_known' must be a list of objects")
    yield Bad("known-divergences-dict.json", doc(known_divergences={}), "'known_divergences' must be")
    yield Bad("selection-list.json", doc(selection=[]), "'selection' must be")
    yield Bad("complete-string.json", doc(complete="yes"), "'complete' must be")
    yield Bad("incomplete-list.json", doc(incomplete=[]), "'incomplete' must be")


def benchmark_files() -> Iterator[Bad]:
    """Broken pytest-benchmark files, read beside a good results file."""
    ok = {"fullname": "t::a", "stats": {"min": 1e-4, "median": 1.1e-4, "iqr": 1e-6}}

    def doc(*benchmarks, **top) -> bytes:
        return json.dumps({"benchmarks": list(benchmarks), **top}).encode()

    yield Bad("bench-junk.json", b"[1,", "not valid JSON")
    yield Bad("bench-list.json", b"[]", "not a pytest-benchmark JSON file")
    yield Bad("bench-benchmarks-dict.json", json.dumps({"benchmarks": {}}).encode(), "not a pytest-benchmark JSON file")
    yield Bad("bench-no-stats.json", doc({"fullname": "t::a"}), "has no fullname and stats")
    yield Bad("bench-no-fullname.json", doc({"stats": ok["stats"]}), "has no fullname and stats")
    yield Bad("bench-min-zero.json", doc({**ok, "stats": {**ok["stats"], "min": 0}}), "stats.min must be a positive number")
    yield Bad("bench-min-negative.json", doc({**ok, "stats": {**ok["stats"], "min": -1}}), "stats.min must be a positive number")
    yield Bad("bench-min-string.json", doc({**ok, "stats": {**ok["stats"], "min": "fast"}}), "stats.min must be a positive number")
    yield Bad("bench-median-missing.json", doc({**ok, "stats": {"min": 1e-4, "iqr": 0}}), "stats.median must be a positive number")
    yield Bad("bench-extra-info-list.json", doc({**ok, "extra_info": []}), "extra_info must be an object")
    yield Bad("bench-machine-info-list.json", doc(ok, machine_info=[]), "machine_info must be an object")
    yield Bad("bench-item-int.json", doc(1), "has no fullname and stats")


def write_all(out: Path, good_results: dict) -> list[Path]:
    written = []
    for folder, items in (("cases", case_files()), ("results", results_files(good_results)), ("benchmarks", benchmark_files())):
        (out / folder).mkdir(parents=True, exist_ok=True)
        for bad in items:
            (out / folder / bad.name).write_bytes(bad.content)
            written.append(out / folder / bad.name)
    return written


if __name__ == "__main__":
    from conformance.run import results as results_io

    good = results_io.document([], {})
    print(f"{len(write_all(Path(sys.argv[1]), good))} files written to {sys.argv[1]}")
