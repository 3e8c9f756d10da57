"""The Markdown pages of a run: summary.md (also the body of report.md) and details.md, each its header and then the
registered sections of its page (sections.py)."""

from __future__ import annotations

from pathlib import Path

from ..model.status import STATUSES
from ..run import results as results_io
from ..speed import documents as bench_documents
from .findings import verdict_line
from .markdown import md_cell
from .sections import Page, View, markdown, on_page
from .speed import PLOT
from .summary import DETAILS, status_counts


def render_details(doc: dict) -> str:
    """details.md: every long table of a run, linked from summary.md and report.md."""
    return "\n".join(["# softmax-conformance: the details", "", *markdown(Page.DETAILS, View(doc, []))]) + "\n"


def _frameworks(env: dict) -> list[str]:
    lines = ["## Frameworks", ""]
    for name, info in sorted(env.get("frameworks", {}).items()):
        if "absent" in info:
            lines.append(f"- **{md_cell(name)}**: absent ({md_cell(info['absent'])})")
        else:
            lines.append(f"- **{md_cell(name)}** {md_cell(info.get('version'))} on {md_cell(', '.join(info.get('devices', [])))}"
                         + (f"; skipped {md_cell(', '.join(info['skipped_devices']))}" if info.get("skipped_devices") else "")
                         + (f"; CRASHED: {md_cell(str(info['crash']).splitlines()[-1])}" if info.get("crash") else ""))
    caches = sorted({i["compile_cache"] for i in env.get("frameworks", {}).values() if i.get("compile_cache")})
    if caches:
        lines.append(f"- compiled programs kept between runs in {', '.join(caches)}: a second run compiles less")
    return lines


def render(doc: dict, benchmarks: list[dict] | None = None, speed_plot: str | None = None) -> str:
    """The summary; with benchmarks (pytest-benchmark entries from `conformance bench`), a speed section too."""
    view = View(doc, benchmarks or [], speed_plot)
    counts = status_counts(view.records)
    lines = ["# softmax-conformance summary", "", f"**Verdict**: {md_cell(verdict_line(view.findings))}", "",
             f"{len(view.records)} records: " + ", ".join(f"{counts.get(s, 0)} {s}" for s in STATUSES), ""]
    lines += _frameworks(doc["environment"])
    if doc.get("interrupted") or doc.get("complete") is False:
        lost = (doc.get("incomplete") or {}).get("lost") or []
        lines += ["", "**This run is incomplete: the records below are partial.**"
                  + (" Lost: " + "; ".join(md_cell(f"{x.get('shard')}: {x.get('why')}") for x in lost) if lost else "")]
    lines += markdown(Page.SUMMARY, view)
    lines += ["", "## More", "", f"`{DETAILS}` beside this file: " + "; ".join(s.title for s in on_page(Page.DETAILS)) + "."]
    return "\n".join(lines) + "\n"


def write(out: Path, doc: dict) -> Path:
    """summary.md and details.md for a results document in `out`, with the speed section of a `conformance bench` into
    the same folder; returns summary.md's path (run.output.save calls it after results.json)."""
    benchmarks = bench_documents.load([out / bench_documents.BENCH_FILE])["benchmarks"]
    plot = PLOT if (out / PLOT).exists() else None
    results_io.write_text(out / DETAILS, render_details(doc))
    results_io.write_text(out / "summary.md", render(doc, benchmarks, plot))
    return out / "summary.md"
