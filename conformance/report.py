"""`conformance report`: merge results files and render index.html (Jinja2, autoescaped) and report.md.

Merging: records are keyed by the SPEC's identity; a later file wins for the same key (so a GPU run's
file and a per-framework tox env's file combine into one report). Each framework's environment is kept
per source file, so a reader can see which machine produced which records. The merged records are
written too, as `merged.json` (a results file the gate reads), so CI can gate the union of its jobs.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import jinja2

from . import results as results_io
from . import speed_report, summary

TEMPLATES = Path(__file__).resolve().parent / "templates"
MERGED = "merged.json"


def merge(paths: list[Path]) -> dict:
    records: dict[tuple, dict] = {}
    environments = []
    stale: dict[str, dict] = {}
    entries: dict[str, dict] = {}
    for path in paths:
        doc = results_io.read(path)
        for r in doc["records"]:
            records[results_io.key(r)] = {**r, "source": str(path)}
        environments.append({"source": str(path), "created": doc.get("created"), **doc["environment"]})
        for e in doc.get("stale_known", []):
            stale[e["id"]] = e
        for e in doc.get("known_divergences", []):
            entries[e["id"]] = e
    merged = {"schema": results_io.SCHEMA, "records": list(records.values()), "stale_known": list(stale.values()),
              "sources": [str(p) for p in paths], "environments": environments, "known_divergences": list(entries.values()),
              "environment": environments[-1] if environments else {}}
    merged["environment"] = {**merged["environment"], "frameworks": {
        name: info for env in environments for name, info in env.get("frameworks", {}).items()}}
    return merged


def repro(r: dict) -> str:
    """A copy-paste snippet that re-computes exactly this record."""
    return (
        "from pathlib import Path\n"
        "from conformance.adapters import load_adapter\n"
        "from conformance.cases import load\n"
        "from conformance.inputs import build\n"
        "from conformance import oracle\n"
        f"case = next(c for c in load([Path({r.get('case_path', 'cases')!r})]) if c.full_id == {r['case']!r})\n"
        f"inputs = build(case, {r['op']!r}, {r['dtype']!r})\n"
        f"fw = load_adapter({r['framework']!r})\n"
        f"impl = next(i for i in fw.implementations() if i.name == {r['impl']!r} and i.op == {r['op']!r})\n"
        f"print('got   ', fw.evaluate(impl, inputs, [{r['quantity']!r}], {r['mode']!r}, {r['device']!r})[{r['quantity']!r}])\n"
        f"print('oracle', oracle.compute(inputs, {r['quantity']!r}).value)\n"
    )


def _plots(records: list[dict], out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    values = [r for r in records if r["quantity"] == "value" and r.get("logit_scale") and not r.get("invalid")
              and (r.get("max_ulp") is not None or r.get("nan_count", 0) + r.get("inf_count", 0))]
    frameworks = sorted({r["framework"] for r in values})
    if values:
        fig, axes = plt.subplots(1, max(1, len(frameworks)), figsize=(4.2 * max(1, len(frameworks)), 3.6), sharey=True, squeeze=False)
        for ax, fw in zip(axes[0], frameworks):
            for naive, colour, label in ((False, "tab:blue", "fused"), (True, "tab:red", "naive")):
                pts = [(r["logit_scale"], r["max_ulp"] if r.get("max_ulp") is not None and not (r.get("nan_count") or r.get("inf_count")) else 1e12)
                       for r in values if r["framework"] == fw and bool(r.get("naive")) == naive and r["dtype"] == "float32"]
                if pts:
                    xs, ys = zip(*pts)
                    ax.scatter(xs, [max(y, 1e-3) for y in ys], s=12, alpha=0.6, c=colour, label=label)
            ax.set_xscale("symlog")
            ax.set_yscale("log")
            ax.axhline(1e12, color="grey", lw=0.5)
            ax.set_title(f"{fw} (float32 values)")
            ax.set_xlabel("max |logit|")
        axes[0][0].set_ylabel("max error (ulp); 1e12 = NaN/inf")
        axes[0][0].legend()
        fig.tight_layout()
        fig.savefig(out / "error_vs_scale.png", dpi=90)
        plt.close(fig)
        files.append("error_vs_scale.png")
    return files


def _write_benchmarks(bench: dict, out: Path) -> str | None:
    """The merged benchmarks beside merged.json (so the gate can compare the union), and their plot."""
    if not bench["benchmarks"]:
        return None
    results_io.write(bench, out / speed_report.BENCH_FILE)
    return speed_report.plot(bench["benchmarks"], out)


def build(paths: list[Path], out: Path, bench_paths: list[Path] | None = None) -> Path:
    doc = merge(paths)
    out.mkdir(parents=True, exist_ok=True)
    records = doc["records"]
    bench_paths = [Path(p).with_name(speed_report.BENCH_FILE) for p in paths] + list(bench_paths or [])
    bench = speed_report.load(bench_paths)
    benchmarks = bench["benchmarks"]
    speed_plot = _write_benchmarks(bench, out)
    plots = _plots(records, out)
    by_case: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        by_case[r["case"]].append(r)
    cases = []
    for case_id in sorted(by_case):
        rs = sorted(by_case[case_id], key=lambda r: (r["op"], r["quantity"], r["dtype"], r["framework"], r["impl"], r["mode"]))
        fails = [r for r in rs if r["status"] in ("fail", "error", "known")]
        cases.append({"id": case_id, "anchor": case_id.replace("/", "--"), "records": rs,
                      "fails": [{**r, "repro": repro(r)} for r in fails]})
    overview = defaultdict(lambda: defaultdict(int))
    for r in records:
        overview[(r["framework"], r["impl"], r["op"], r["quantity"])][r["status"]] += 1
    worst_case = {}
    for r in records:
        if r["status"] in ("fail", "error", "known"):
            worst_case.setdefault((r["framework"], r["impl"], r["op"], r["quantity"]), r["case"].replace("/", "--"))
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=jinja2.select_autoescape(["html"]))
    html = env.get_template("index.html").render(
        doc=doc, counts=summary.status_counts(records), statuses=summary.COUNTED, cases=cases, plots=plots,
        overview=sorted(overview.items()), worst_case=worst_case,
        agreement={q: summary.agreement_matrix(records, q) for q in ("value", "grad_logits", "grad_labels", "hvp")},
        invalid=summary.invalid_behaviour(records), speed_plot=speed_plot,
        speed_intro=speed_report.intro(benchmarks) if benchmarks else None, speed_tables=speed_report.tables(benchmarks) if benchmarks else [],
        bench_runs=[r for r in bench["runs"] if "conformance" in r])
    (out / "index.html").write_text(html, encoding="utf-8")
    (out / "report.md").write_text(summary.render(doc, benchmarks, speed_plot), encoding="utf-8")
    results_io.write(doc, out / MERGED)
    return out
