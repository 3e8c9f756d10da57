""""Which function should I use?" answered from the report alone, on the committed baseline: the researcher's
question (a cross-entropy for bfloat16 with a large vocabulary, and is torch.compile safe?) has its table, built from
records that include the large-vocabulary cases, and each verdict agrees with the records it summarises."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance.report import choose, html
from conformance.run import results as results_io

BASELINE = Path(__file__).resolve().parent.parent / "reports" / "baseline" / "results.json"
QUESTION = ("sparse_softmax_cross_entropy", "bfloat16", "compiled", "cpu")


@pytest.fixture(scope="module")
def records() -> list[dict]:
    return results_io.read(BASELINE)["records"]


def test_the_bfloat16_large_vocabulary_compiled_question_has_an_answer(records):
    rows = choose.choices(records)[QUESTION]
    mine = [r for r in records if (r["op"], r["dtype"], r["mode"], r["device"]) == QUESTION and not r.get("invalid")
            and r["status"] not in ("unsupported", "skip")]
    assert any(r["case"].startswith("model-shapes/vocabulary-") for r in mine), "no large-vocabulary record behind the answer"
    for c in rows:
        own = [r for r in mine if (r.get("impl_id") or f"{r['framework']}/{r['impl']}") == c.impl_id]
        assert c.valid == len(own) and c.passes_everything == all(r["status"] == "pass" for r in own), c
        assert c.worst == max((r["tol_ratio"] or 0 for r in own if r["status"] == "pass"), default=0.0)
    best = [c for c in rows if c.passes_everything and not c.naive]
    assert best and rows.index(best[0]) == 0  # the first row is an implementation to use, not a naive formula


def test_invalid_input_behaviour_is_counted_per_kind(records):
    rows = {c.impl_id: c for c in choose.choices(records)[("sparse_softmax_cross_entropy", "float32", "eager", "cpu")]}
    invalid = [r for r in records if r["op"] == "sparse_softmax_cross_entropy" and r["dtype"] == "float32" and r["mode"] == "eager"
               and r.get("invalid") and r["quantity"] == "value" and r["status"] not in ("unsupported", "skip")]
    for impl_id, c in rows.items():
        own = [r for r in invalid if r.get("impl_id") == impl_id]
        assert sum(c.invalid.values()) == len(own)
        assert c.invalid["silent"] == sum(r["behaviour"] == "finite" for r in own)


def test_the_report_writes_the_long_form_and_a_column_per_dtype_and_mode(records, tmp_path):
    html.build([BASELINE], tmp_path)
    text = (tmp_path / choose.FILE).read_text()
    assert "## sparse_softmax_cross_entropy, bfloat16, compiled, cpu" in text
    page = (tmp_path / "index.html").read_text()
    assert 'id="choose"' in page and "bfloat16<br>compiled" in page
    heat = page.split('class="heat"', 1)[1].split("</table>", 1)[0]  # the heatmap keeps its own columns: the suites
    assert '<th class="col" scope="col"><a href="cases/extreme-logits.html">extreme-logits</a></th>' in heat and "(&#39;float" not in heat
    assert "Which function should I use?" in (tmp_path / "report.md").read_text()
