"""Exceptions have an owner: Python's own errors raised by the calling code (an adapter, a user's function) are errors
of that code, never a framework signalling bad input, on any case; a keyword the installed release does not take is
`unsupported`; what the framework itself raises stays its answer."""

from __future__ import annotations

import dataclasses
import sys
import textwrap

from results_factory import load as load_results

from conformance.adapters.ownership import missing_keyword, package_dirs, raised_by_code
from conformance.app.cli import main

MINE = '''
import dataclasses
from conformance.adapters import numpy as base
from conformance.adapters.numpy import load, version, devices, flags, evaluate, set_threads, benchmark_call, bare_call
NAME = "mine"
REQUIRES = ("scipy",)
PACKAGES = ("numpy", "scipy")
np = None  # the bug: a module-level name that shadows the user's import

def _broken(x, labels, inputs):
    return np.exp(x)  # AttributeError: 'NoneType' object has no attribute 'exp'

def _old_release(x, labels, inputs):
    import scipy.special
    return scipy.special.log_softmax(x, axis=inputs.axis, where_was_added_later=True)

def implementations():
    out = []
    for i in base.implementations():
        if i.naive:
            continue
        if i.op == "sparse_softmax_cross_entropy":
            i = dataclasses.replace(i, forward=_broken)
        elif i.op == "log_softmax":
            i = dataclasses.replace(i, forward=_old_release)
        out.append(dataclasses.replace(i, framework=NAME))
    return out
'''


def _run(tmp_path, monkeypatch, *cases: str) -> list[dict]:
    (tmp_path / "mine_adapter.py").write_text(textwrap.dedent(MINE))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("CONFORMANCE_ADAPTERS", "mine=mine_adapter")
    selection = [x for c in cases for x in ("--case", c)]
    main(["run", "--frameworks", "mine", "--modes", "eager", "--jobs", "1", "--out", str(tmp_path / "out"), *selection])
    return load_results(tmp_path / "out" / "results.json")["records"]


def test_an_attribute_error_in_the_calling_code_is_never_a_pass(tmp_path, monkeypatch):
    records = _run(tmp_path, monkeypatch, "invalid-input/*", "sparse-labels/*")
    sparse = [r for r in records if r["op"] == "sparse_softmax_cross_entropy" and r["status"] != "unsupported"]
    assert sparse and all(r["status"] == "error" for r in sparse), {r["status"] for r in sparse}
    assert any(r["invalid"] for r in sparse)  # the out-of-range labels too: the code's error, not a signal
    assert all(r["error"]["where"].startswith("code ") and "mine_adapter.py" in r["error"]["where"] for r in sparse)


def test_a_keyword_the_release_does_not_take_is_unsupported(tmp_path, monkeypatch):
    records = _run(tmp_path, monkeypatch, "published-values/*", "extreme-logits/huge-positive-row")
    logs = [r for r in records if r["op"] == "log_softmax" and r["quantity"] == "value"]
    assert logs and all(r["status"] == "unsupported" and "takes no 'where_was_added_later' argument" in r["reason"] for r in logs)


def test_what_the_framework_raises_is_its_own():
    import numpy as np

    dirs = package_dirs(["numpy"])
    try:
        np.take_along_axis(np.zeros((2, 3)), np.array([[5], [0]]), axis=-1)
    except IndexError as exc:
        assert raised_by_code(exc, dirs) is None  # not a code error type: the framework's answer
    try:
        np.zeros(3).reshape("x")
    except TypeError as exc:
        assert raised_by_code(exc, dirs) is None  # a TypeError about the input, from the framework's C code
    try:
        None.exp  # noqa: B018
    except AttributeError as exc:
        where = raised_by_code(exc, dirs)
        assert where and where.startswith(__file__)
    assert missing_keyword(TypeError("f() got an unexpected keyword argument 'axis'")) == "axis"
    assert missing_keyword(ValueError("got an unexpected keyword argument 'axis'")) is None
    assert dataclasses and sys  # imported for the adapter module written above
