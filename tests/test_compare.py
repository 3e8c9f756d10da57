"""The comparison: what passes, what fails, and what invalid input is judged on."""

from __future__ import annotations

import numpy as np

from conformance.judge.compare import compare_values, judge
from conformance.judge.oracle import Reference
from conformance.judge.tolerance import published_tolerance, tolerance
from conformance.model import dtypes as dt


def ref(values, scale=1.0):
    values = np.asarray(values, dtype=np.longdouble)
    return Reference(values, np.full(values.shape, scale))


def test_nonfinite_where_oracle_is_finite_always_fails():
    huge_tol = np.full(2, 1e300)
    assert compare_values(np.array([np.nan, 1.0]), np.array([0.5, 1.0]), huge_tol, "float32").status == "fail"
    assert compare_values(np.array([np.inf, 1.0]), np.array([0.5, 1.0]), huge_tol, "float32").status == "fail"
    # NaN matches NaN, an infinity only the same infinity
    assert compare_values(np.array([np.nan, -np.inf]), np.array([np.nan, -np.inf]), huge_tol, "float32").status == "pass"
    assert compare_values(np.array([np.inf]), np.array([-np.inf]), huge_tol[:1], "float32").status == "fail"
    assert compare_values(np.array([0.3]), np.array([np.nan]), huge_tol[:1], "float32").status == "fail"


def test_tolerance_scales_with_dtype_and_classes():
    u32, u64 = dt.fmt("float32").unit_roundoff, dt.fmt("float64").unit_roundoff
    assert u32 == 2.0**-24 and u64 == 2.0**-53
    t = tolerance(np.array([1.0]), "value", "float32", classes=2)
    assert np.isclose(t[0], u32 * (4 + 2) + 2.0**-126)
    assert tolerance(np.array([1.0]), "value", "float32", classes=1024)[0] > t[0]
    assert tolerance(np.array([1.0]), "hvp", "float32", classes=2)[0] > tolerance(np.array([1.0]), "grad_logits", "float32", classes=2)[0]


def test_one_ulp_passes_and_far_off_fails():
    r = ref([0.25])
    one_ulp = np.float32(0.25) + np.spacing(np.float32(0.25))
    v = judge(np.array([one_ulp]), None, r, "value", "float32", 4, invalid=False, expect={})
    assert v.status == "pass" and 0.9 < v.max_ulp < 1.1
    v = judge(np.array([np.float32(0.2501)]), None, r, "value", "float32", 4, invalid=False, expect={})
    assert v.status == "fail" and v.max_ulp > 1000 and v.worst_index == [0]


def test_invalid_input_judged_on_behaviour():
    r = ref([np.nan])
    assert judge(None, ValueError("bad label"), r, "value", "float32", 4, True, {}).status == "pass"
    assert judge(np.array([np.nan]), None, r, "value", "float32", 4, True, {}).status == "pass"
    silent = judge(np.array([1.5]), None, r, "value", "float32", 4, True, {})
    assert silent.status == "fail" and silent.silent is True
    # an explicit expectation of an error turns a returned value into status error
    assert judge(np.array([np.nan]), None, r, "value", "float32", 4, True, {"behaviour": "error"}).status == "error"


def test_valid_input_raising_is_error():
    v = judge(None, RuntimeError("boom\nmore"), ref([1.0]), "value", "float32", 4, False, {})
    assert v.status == "error" and v.error == {"type": "RuntimeError", "message": "boom"}


def test_published_expectation_uses_its_printed_precision():
    assert np.isclose(published_tolerance(np.array([0.839343]))[0], 5e-7)
    assert np.isclose(published_tolerance(np.array([0.16838508]))[0], 5e-9)
    # an output that matches the oracle but not the published number fails
    r = ref([0.839343339])
    ok = judge(np.array([0.839343339]), None, r, "value", "float64", 3, False, {"value": 0.839343})
    bad = judge(np.array([0.839343339]), None, r, "value", "float64", 3, False, {"value": 0.839353})
    assert ok.status == "pass" and ok.expect_checked
    assert bad.status == "fail" and "explicit expectation" in bad.detail


def test_an_error_keeps_its_cause():
    """A compiler error whose first line only says who raised keeps the line that says what (a damaged cache entry),
    and an exception raised from another names the innermost one."""
    from conformance.judge.compare import _first_line

    try:
        try:
            raise ImportError("/cache/torchinductor/ab/main.so: file too short")
        except ImportError as inner:
            raise RuntimeError("backend='inductor' raised:\nImportError: /cache/torchinductor/ab/main.so: file too short\n\nSet TORCH_LOGS") from inner
    except RuntimeError as exc:
        assert _first_line(exc) == "backend='inductor' raised: ImportError: /cache/torchinductor/ab/main.so: file too short"
    try:
        try:
            raise ValueError("the real reason")
        except ValueError as inner:
            raise KeyError("a wrapper") from inner
    except KeyError as exc:
        assert _first_line(exc) == "'a wrapper' (caused by ValueError: the real reason)"


def test_an_infinity_mismatch_is_said_as_such_not_as_a_tolerance():
    from conformance.judge.compare import compare_values

    v = compare_values(np.array([0.0, -120000.0], np.float32), np.array([0.0, -np.inf], dtype=np.longdouble), np.full(2, 1e-6), "float32")
    assert v.status == "fail" and "where the oracle is -inf (an infinity matches only itself)" in v.detail and "tolerance" not in v.detail
