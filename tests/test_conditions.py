"""Registry entries that match conditions on the inputs (`when:`), so that a user's own case meeting the condition
is explained as the bundled ones are: ONNX's opset-11 Softmax normalises the flattened block whenever the class axis
is not last, on any case."""

from __future__ import annotations

import json
import textwrap

import pytest
from results_factory import load as load_results

from conformance.app.cli import main
from conformance.corpus import bundled, conditions
from conformance.corpus.cases import load
from conformance.judge import known

pytest.importorskip("onnxruntime")

MINE = textwrap.dedent("""\
    suite: mine
    description: a user's own case, unknown to the bundled registry's case patterns
    cases:
      - id: half-precision-classes-in-the-middle
        description: attention-like scores [batch, classes, heads] in float16, classes on axis 1
        source: "derivation: any rank-3 input with the class axis in the middle"
        ops: [softmax]
        dtypes: [float16]
        axis: 1
        quantities: [value]
        logits: {generate: normal, shape: [2, 5, 3], seed: 7}
    """)

OLD_ENTRY = textwrap.dedent("""\
    divergences:
      - id: opset-11-by-case-name
        match:
          framework: onnxruntime
          impl: ["onnxruntime/Softmax-11"]
          case: ["shapes/class-axis-middle"]
        explains: value
        kind: design
        reason: the entry as it was, naming the bundled cases it was seen on
        link: https://github.com/onnx/onnx/pull/2879
    """)


def test_conditions_of_a_case():
    case = next(c for c in load([bundled.cases_dir()]) if c.full_id == "shapes/class-axis-middle")
    found = conditions.of(case)
    assert found["class_axis"] == "middle" and found["rank"] >= 3 and found["mask"] == "none"
    assert conditions.meets(found, {"class_axis": ["first", "middle"]}) and not conditions.meets(found, {"class_axis": "last"})


@pytest.mark.parametrize("when, said", [({"class_axis": "sideways"}, "takes last, first, middle"), ({"colour": "red"}, "unknown condition"),
                                        ({"rank": ["three"]}, "whole numbers"), ([], "mapping")])
def test_a_bad_condition_is_refused_at_load(tmp_path, when, said):
    path = tmp_path / "known.yaml"
    path.write_text(json.dumps({"divergences": [{"id": "x", "match": {"framework": "numpy"}, "when": when, "explains": "value", "kind": "bug",
                                                 "reason": "r", "link": "https://example.org/x"}]}))
    with pytest.raises(known.RegistryError, match=said):
        known.load([path])


def _run(tmp_path, name: str, registry: list[str]) -> list[dict]:
    (tmp_path / "mine.yaml").write_text(MINE)
    out = tmp_path / name
    args = ["run", "--cases", str(tmp_path / "mine.yaml"), "--frameworks", "onnxruntime", "--impl", "onnxruntime/Softmax-11",
            "--modes", "eager", "--out", str(out)]
    for r in registry:
        args += ["--known", r]
    main(args)
    return load_results(out / "results.json")["records"]


def test_a_condition_entry_explains_a_new_user_case_that_the_case_name_entry_did_not(tmp_path):
    (tmp_path / "old.yaml").write_text(OLD_ENTRY)
    (before,) = _run(tmp_path, "old", [str(tmp_path / "old.yaml")])
    assert before["status"] == "fail" and before["dtype"] == "float16"  # the case-name entry does not see it
    (after,) = _run(tmp_path, "new", ["bundled"])
    assert after["status"] == "known" and after["known_id"] == "onnx-opset-11-softmax-normalises-the-flattened-block"
