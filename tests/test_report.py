"""The report renders, escapes and links fails to repros, and says what a run means in one line."""

from __future__ import annotations

from results_factory import record, write

from conformance.app.cli import main
from conformance.gate import records as gate
from conformance.report import html as report
from conformance.run import results as results_io


def test_report_merges_escapes_and_links_repros(tmp_path):
    evil = "s/<script>alert(1)</script>"
    a = write(tmp_path, "a", [record(case=evil, status="fail", max_ulp=50.0, detail="<b>bad</b>")])
    b = write(tmp_path, "b", [record(framework="jax", impl="jax.nn.softmax")])
    out = report.build([a, b], tmp_path / "out")
    html = (out / "index.html").read_text()
    suite = (out / "cases" / "s.html").read_text()
    for page in (html, suite):
        assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page
    assert "jax.nn.softmax" in html and "torch.softmax" in html  # merged
    assert "fw.evaluate(impl, inputs" in suite and "conformance run --case " in suite  # the fail's snippet and command
    assert 'href="cases/s.html#' in html  # findings and tables link to the record's suite page
    assert (out / "report.md").read_text().startswith("# softmax-conformance summary")
    assert (out / "error_vs_scale.png").exists()
    merged = results_io.read(out / report.MERGED)  # a results file the gate accepts
    assert {r["framework"] for r in merged["records"]} == {"torch", "jax"}
    assert gate.gate(out / report.MERGED, out / report.MERGED).ok


def test_report_cli(tmp_path):
    a = write(tmp_path, "a", [record()])
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / report.MERGED).write_text("{}")  # an earlier report's merge
    assert main(["report", str(a), "--out", str(tmp_path / "o")]) == 0
    assert not (tmp_path / "o" / report.MERGED).exists()  # one file is its own results file: no copy of it
    assert "torch.softmax" in (tmp_path / "o" / "index.html").read_text()
    assert "1 records: 1 pass" in (tmp_path / "o" / "report.md").read_text()
    assert main(["report", str(tmp_path / "missing.json"), "--out", str(tmp_path / "o")]) == 2


def _keras_record(framework: str, door: str, status: str, behaviour: str, case: str = "shapes/x", impl_id: str | None = None):
    return record(case=case, framework=framework, impl=f"keras {door}", impl_id=impl_id or f"{framework}/keras/{door}",
                  status=status, behaviour=behaviour, known_status="fail" if status == "known" else None)


def test_the_same_keras_call_parting_across_backends_is_reported():
    """A door run by three backends: one call where all pass, one where JAX returns NaN (registered, so `known`) and
    the others raise. The registry must not hide the parting: it compares verdicts before the registry."""
    from conformance.report import cross_backend, summary

    records = [_keras_record(fw, "ops/softmax", "pass", "finite") for fw in ("tensorflow", "keras-jax", "keras-torch")]
    records += [_keras_record("tensorflow", "ops/softmax", "pass", "error", "bad/x"),
                _keras_record("keras-jax", "ops/softmax", "known", "all_nan", "bad/x"),
                _keras_record("keras-torch", "ops/softmax", "pass", "error", "bad/x"),
                _keras_record("torch", "ops/softmax", "fail", "finite", impl_id="torch/softmax")]  # not a shared door
    counts = {row[1]: row[2:] for row in cross_backend.pair_counts(records)}
    assert counts == {"keras-jax / keras-torch": [2, 1, 1], "keras-jax / tensorflow": [2, 1, 1], "keras-torch / tensorflow": [2, 2, 0]}
    (parting,) = cross_backend.partings(records)
    assert parting[1] == "bad/x" and "keras-jax: fail (all_nan)" in parting[-1] and "tensorflow: pass (error)" in parting[-1]
    text = "\n".join(summary.cross_backend_section(records))
    assert "1 call(s) where the backends part ways" in text


def test_the_verdict_line_says_what_0_fail_and_the_silent_answers_mean_together():
    from conformance.report.findings import collect, verdict_line

    silent = dict(invalid=True, behaviour="finite", status="known", known_id="k", known="https://x")
    doc = {"records": [record(), record(naive=True, status="fail", impl="naive"), record(case="s/a", **silent),
                       record(case="s/b", **{**silent, "status": "fail", "known_id": None, "known": None})]}
    line = verdict_line(collect(doc))
    assert line.startswith("1 unexplained fail/error record(s) of the fused implementations (1 of the naive formulas")
    assert "2 silent answer(s) to invalid input" in line and "1 registered, 1 not" in line
    doc["records"] = doc["records"][:3]
    assert verdict_line(collect(doc)).startswith("0 unexplained") and "all registered" in verdict_line(collect(doc))


def test_the_naive_formulas_are_counted_apart_and_never_in_the_red_heading(tmp_path):
    from conformance.report import pages

    doc = {"records": [record(), record(impl="naive: exp/sum", naive=True, status="fail", detail="at [0]: got nan, oracle 1")],
           "environment": {}, "stale_known": []}
    text = pages.render(doc)
    assert "**Unexplained fails and errors** of the fused implementations: 0. None." in text
    assert "apart: 1 fail/error records of the naive formulas" in text
    assert "No unexplained fail or error" in text.split("## Unexplained fails and errors")[1].split("##")[0]
    assert "naive: exp/sum" in pages.render_details(doc)


def test_every_section_is_registered_once_and_rendered_by_both_renderers(tmp_path):
    """report/sections.py is the one list: each HTML section has its body template and a link in the navigation, each
    template is a registered section's, and each Markdown section appears under its title on its page."""
    from conformance.report import html, pages, sections

    templates = {p.stem for p in (html.TEMPLATES / "sections").glob("*.html")}
    assert templates == {s.id for s in sections.SECTIONS if s.html}
    ids = [s.id for s in sections.SECTIONS]
    assert len(ids) == len(set(ids))
    doc = {"records": [record(), record(case="s/d", status="fail", detail="at [0]: got 1, oracle 2")], "environment": {}}
    summary_md, details_md = pages.render(doc), pages.render_details(doc)
    for s in sections.SECTIONS:
        if s.page is sections.Page.SUMMARY and s.when is None:
            assert f"## {s.title}" in summary_md, s.id
        if s.page is sections.Page.DETAILS:
            assert f"## {s.title}" in details_md and s.title in summary_md.split("## More")[1], s.id
    path = write(tmp_path, "run", doc["records"])
    html.build([path], tmp_path / "report")
    page = (tmp_path / "report" / "index.html").read_text()
    nav = page.split('<nav aria-label="contents">')[1].split("</nav>")[0]
    for s in sections.in_html({}):
        assert f'href="#{s.id}"' in nav and f'id="{s.id}"' in page, s.id
