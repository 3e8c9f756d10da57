"""`conformance report`: merge results files and render index.html (Jinja2, autoescaped) and report.md.

Merging: records are keyed by the SPEC's identity and the framework's version. Files of different frameworks,
devices or machines combine into one report; two runs of one framework at different versions are both kept and
shown side by side (what moved between them first). The same record at the same version in two files is an
error, unless `--on-duplicate later` says that the later file wins. Each framework's environment is kept per
source file, so a reader can see which machine produced which records. The merged records are written too, as
`merged.json` (a results file the gate reads, when it holds one version per framework).
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import jinja2

from ..model.names import STATUSES
from ..model.record import Record, unexplained
from ..model.status import Status
from ..run import output, repro, shares
from ..run import results as results_io
from ..speed import documents as bench_documents
from . import choose, cross_backend, pages, sections, summary
from . import diff as diff_mod
from . import properties as properties_table
from . import speed as speed_report
from .findings import KNOWN_COLOUR, collect, heatmap, silent, verdict_line
from .markdown import md_cell
from .notes import case_notes

TEMPLATES = Path(__file__).resolve().parent / "templates"
MERGED = "merged.json"


def _version(r: dict, doc: dict) -> str:
    if r.framework_version:
        return str(r.framework_version)
    info = doc["environment"].get("frameworks", {}).get(r.framework) or {}
    return str(info.get("version", "?"))


def merge(paths: list[Path], on_duplicate: str = "error") -> dict:
    records: dict[tuple, Record] = {}
    environments = []
    stale: dict[str, dict] = {}
    entries: dict[str, dict] = {}
    incomplete = []
    docs = [results_io.read(path) for path in paths]
    for path, doc in zip(paths, docs):
        for r in doc["records"]:
            version = _version(r, doc)
            k = (*results_io.key(r), version)
            if k in records and on_duplicate == "error":
                raise results_io.ResultsError(
                    f"{path}: {diff_mod.describe(r)} at {r.framework} {version} is also in {records[k].source}: the same "
                    "record twice (pass one of the files, or --on-duplicate later to let the later file win)")
            records[k] = r.but(framework_version=version, source=str(path))
        environments.append({"source": str(path), "created": doc.get("created"), **doc["environment"]})
        for e in doc.get("stale_known", []):
            stale[e["id"]] = e
        for e in doc.get("known_divergences", []):
            if "exercised" in e and e["id"] in entries:  # a machine's share lists every entry: add the shares up
                e = {**e, **{k: int(entries[e["id"]].get(k) or 0) + int(e.get(k) or 0) for k in ("records", "beyond", "exercised")}}
            entries[e["id"]] = e
        if doc.get("complete") is False or doc.get("interrupted"):
            incomplete.append({"source": str(path), **(doc.get("incomplete") or {"interrupted": True})})
        if (stale_note := output.stale_note(Path(path))) is not None:
            incomplete.append({"source": str(path), "lost": [{"shard": str(path.parent), "why": stale_note}]})
    joined = shares.join(docs)
    if joined.missing:
        incomplete.append({"source": "the shares of a split run", "lost": joined.missing})
    for e in joined.stale:
        stale[e["id"]] = e
    entries = {k: e for k, e in entries.items() if e.get("records") or e.get("beyond")}
    merged = {"schema": results_io.SCHEMA, "records": list(records.values()), "stale_known": list(stale.values()),
              "sources": [str(p) for p in paths], "environments": environments, "known_divergences": list(entries.values()),
              "environment": environments[-1] if environments else {}, "complete": not incomplete}
    if incomplete:
        merged["incomplete"] = {"sources": incomplete, "lost": [x for i in incomplete for x in i.get("lost", [])]}
    merged["environment"] = {**merged["environment"], "frameworks": {
        name: info for env in environments for name, info in env.get("frameworks", {}).items()}}
    if joined.selection:  # exactly one split run: the gate compares it within its selection, as the unsplit run
        merged["selection"] = joined.selection
    return merged


def version_pairs(doc: dict) -> list[dict]:
    """For each framework present at two or more versions: the moves between consecutive versions (in file order)."""
    by_fw: dict[str, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for r in doc["records"]:
        by_fw[r.framework][r.framework_version].append(r)
    pairs = []
    for fw, versions in sorted(by_fw.items()):
        names = list(versions)
        for old, new in zip(names, names[1:]):
            a = {"records": versions[old], "environment": _env_of(doc, versions[old][0])}
            b = {"records": versions[new], "environment": _env_of(doc, versions[new][0])}
            pairs.append({"framework": fw, "old": old, "new": new, "moves": diff_mod.diff(a, b),
                          "counts": (len(versions[old]), len(versions[new]))})
    return pairs


def _env_of(doc: dict, record: dict) -> dict:
    return next((e for e in doc["environments"] if e["source"] == record.source), doc["environment"])


NONFINITE_ROW = 1e9  # where the plot draws a NaN/inf answer: a band of its own above every finite error, labelled so


def _plots(records: list[dict], out: Path) -> list[str]:
    """error_vs_scale.png: one panel per op, float32 values, max error in ulp against the largest |logit|; fused
    implementations in blue, the naive formulas in red; a NaN or inf answer is an x in a band of its own labelled
    NaN/inf, never a number on the error axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    values = [r for r in records if r.quantity == "value" and r.logit_scale and not r.invalid and r.dtype == "float32"
              and (r.max_ulp is not None or (r.nan_count or 0) + (r.inf_count or 0))]
    ops = sorted({r.op for r in values})
    if not values:
        return []
    columns = min(3, len(ops))
    fig, axes = plt.subplots((len(ops) + columns - 1) // columns, columns, figsize=(4.6 * columns, 3.3 * ((len(ops) + columns - 1) // columns)),
                             sharey=True, squeeze=False)
    for ax, op in zip(axes.flat, ops):
        for naive, colour, label in ((False, "tab:blue", "fused"), (True, "tab:red", "naive")):
            rs = [r for r in values if r.op == op and bool(r.naive) == naive]
            # a NaN/inf that is the answer (-inf for a masked log-probability) passes and is drawn by its finite part
            bad = [r for r in rs if (r.nan_count or r.inf_count) and (r.status is not Status.PASS or r.max_ulp is None)]
            good = [r for r in rs if r not in bad and r.max_ulp is not None]
            if good:
                ax.scatter([max(r.logit_scale, 0.1) for r in good], [max(r.max_ulp, 1e-3) for r in good], s=10, alpha=0.5, c=colour,
                           label=label)
            if bad:
                ax.scatter([max(r.logit_scale, 0.1) for r in bad], [NONFINITE_ROW] * len(bad), s=22, marker="x", c=colour,
                           label=f"{label}: NaN/inf")
        ax.set_xscale("log")  # scales below 0.1 (all-zero rows) are drawn at 0.1
        ax.set_xticks([1, 1e8, 1e16, 1e24, 1e32], ["1", "1e8", "1e16", "1e24", "1e32"])
        ax.set_xlim(0.05, 1e39)
        ax.set_yscale("log")
        ax.set_ylim(1e-3, NONFINITE_ROW * 10)
        ax.set_yticks([1e-3, 1, 1e3, 1e6, NONFINITE_ROW], ["0.001", "1", "1e3", "1e6", "NaN/inf"])
        ax.axhspan(NONFINITE_ROW / 3, NONFINITE_ROW * 10, color="#fde2e1", zorder=0)
        ax.grid(True, which="major", lw=0.3)
        ax.set_title(op, fontsize=10)
        ax.set_xlabel("max |logit|")
        ax.legend(fontsize=7, loc="center left")
    for ax in axes.flat[len(ops):]:
        ax.set_visible(False)
    for row in axes:
        row[0].set_ylabel("max error (ulp), float32")
    fig.tight_layout()
    with results_io.atomic(out / "error_vs_scale.png") as tmp:
        fig.savefig(tmp, dpi=80, format="png")
    plt.close(fig)
    return ["error_vs_scale.png"]


def _write_benchmarks(bench: dict, out: Path) -> str | None:
    """The merged benchmarks beside merged.json (so the gate can compare the union), and their plot."""
    if not bench["benchmarks"]:
        return None
    results_io.write(bench, out / bench_documents.BENCH_FILE)
    return speed_report.plot(bench["benchmarks"], out)


def _suite_pages(records: list[dict], env: jinja2.Environment, out: Path) -> list[dict]:
    """One page per suite under out/cases/: each case's description and source, the records that are not a plain
    pass with their re-run command and snippet, and all records. Returns the suites' names, case and status counts."""
    notes = case_notes(records)
    by_suite: dict[str, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for r in records:
        by_suite[r.case.split("/")[0]][r.case].append(r)
    (out / "cases").mkdir(exist_ok=True)
    suites = []
    for suite, by_case in sorted(by_suite.items()):
        cases = []
        for case_id, rs in sorted(by_case.items()):
            rs = sorted(rs, key=lambda r: (r.op, r.quantity, r.dtype, r.framework, r.impl, r.mode, r.device))
            fails = [r for r in rs if unexplained(r) or r.status is Status.KNOWN or silent(r)]
            cases.append({"id": case_id, "anchor": anchor(case_id), "records": rs, **notes.get(case_id, {}),
                          "fails": [{**r.to_json(), "silent": silent(r), "command": repro.command(r),  # snippets where there is news
                                     "repro": repro.snippet(r) if r.status is not Status.KNOWN or silent(r) else None} for r in fails]})
        results_io.write_text(out / "cases" / f"{suite}.html", env.get_template("suite.html").render(suite=suite, cases=cases))
        suites.append({"name": suite, "cases": len(by_case), "counts": summary.status_counts([r for rs in by_case.values() for r in rs])})
    return suites


def anchor(case_id: str) -> str:
    return case_id.replace("/", "--")


def build(paths: list[Path], out: Path, bench_paths: list[Path] | None = None, on_duplicate: str = "error") -> Path:

    doc = merge(paths, on_duplicate)
    versions = version_pairs(doc)
    out.mkdir(parents=True, exist_ok=True)
    records = doc["records"]
    bench_paths = [Path(p).with_name(bench_documents.BENCH_FILE) for p in paths] + list(bench_paths or [])
    bench = bench_documents.load(bench_paths)
    benchmarks = bench["benchmarks"]
    speed_plot = _write_benchmarks(bench, out)
    plots = _plots(records, out)
    overview = defaultdict(lambda: defaultdict(int))
    worst_case = {}
    for r in records:
        overview[(r.framework, r.impl, r.op, r.quantity)][r.status] += 1
        if unexplained(r) or r.status is Status.KNOWN:
            worst_case.setdefault((r.framework, r.impl, r.op, r.quantity), r.case)
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=jinja2.select_autoescape(["html"]))
    env.globals["suite_link"] = lambda case_id: f"cases/{case_id.split('/')[0]}.html#{anchor(case_id)}"
    env.filters["web"] = web_link
    suites = _suite_pages(records, env, out)
    disagreements = summary.disagreement_rows(records)
    rows, columns, cells = heatmap(records)
    invalid_columns, invalid_rows = summary.invalid_data(records)
    property_rows = properties_table.rows(records)
    found = collect(doc, len(disagreements))
    chosen = choose.choices(records, benchmarks)
    choose_columns, choose_rows = choose.pivot(chosen)
    context = dict(
        doc=doc, counts=summary.status_counts(records), statuses=STATUSES, plots=plots, suites=suites,
        findings=found, verdict=verdict_line(found), known_colour=KNOWN_COLOUR, choose_cell=choose.cell_text,
        choose_columns=choose_columns, choose_rows=choose_rows, heat={"rows": rows, "columns": columns, "cells": cells},
        overview=sorted(overview.items()), worst_case=worst_case, disagreements=disagreements,
        agreement={q: summary.agreement_data(records, q) for q in ("value", "grad_logits", "grad_labels", "hvp")},
        backend_pairs=cross_backend.pair_counts(records), backend_partings=cross_backend.partings(records),
        invalid_columns=invalid_columns, invalid_rows=invalid_rows, property_rows=property_rows,
        property_counts=properties_table.counts(property_rows), gradients=summary.gradient_data(records), speed_plot=speed_plot,
        speed_intro=speed_report.intro(benchmarks) if benchmarks else None, speed_tables=speed_report.tables(benchmarks) if benchmarks else [],
        bench_runs=[r for r in bench["runs"] if "conformance" in r], versions=versions)
    html = env.get_template("index.html").render(**context, sections=sections.in_html(context))
    results_io.write_text(out / "index.html", html)
    results_io.write_text(out / summary.DETAILS, pages.render_details(doc))
    results_io.write_text(out / "report.md", _versions_md(versions) + pages.render(doc, benchmarks, speed_plot))
    results_io.write_text(out / choose.FILE, summary.which_function(chosen))
    if len(paths) > 1:  # one file is its own results file already: a copy of it would only double the disk it takes
        results_io.write(doc, out / MERGED)
    else:
        (out / MERGED).unlink(missing_ok=True)  # an earlier report's merge into this folder is not this report's
    return out


def web_link(url: object) -> str:
    """A link target only for an http(s) URL: anything else a registry entry, a results file or a case may carry
    (`javascript:`, `data:`, a relative path) renders as text, never as a live link."""
    text = str(url or "").strip()
    return text if re.match(r"^https?://[^\s\"'<>`]+$", text, re.IGNORECASE) else ""


def _versions_md(pairs: list[dict]) -> str:
    """Two versions of a framework in one report: what moved between them comes first."""
    if not pairs:
        return ""
    lines = ["# Versions side by side", ""]
    for p in pairs:
        worse = [m for m in p["moves"] if m.worse]
        lines += [f"## {md_cell(p['framework'])} {md_cell(p['old'])} -> {md_cell(p['new'])}", "",
                  f"{p['counts'][0]} and {p['counts'][1]} records; {len(p['moves'])} moved, {len(worse)} for the worse.", ""]
        lines += ["| record | kind | before | after | worse |", "|---|---|---|---|---|"]
        lines += ["| " + " | ".join(md_cell(x) for x in (m.record, m.kind, m.before, m.after, "yes" if m.worse else "no")) + " |"
                  for m in sorted(p["moves"], key=lambda m: (not m.worse, m.record))[:100]]
        lines.append("")
    return "\n".join(lines) + "\n"
