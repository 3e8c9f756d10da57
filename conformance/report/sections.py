"""The report's sections, registered once: each has one id (its HTML anchor), one title, where its Markdown goes
(summary.md and report.md, or details.md) and the function that writes it, and whether index.html shows it (its body
is templates/sections/<id>.html). The Markdown pages, the HTML page and its navigation all loop over SECTIONS, so a
section added here appears in each, in one order, under one name."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property

from . import choose, summary
from . import properties as properties_table
from .findings import Findings, collect
from .speed import section as speed_section


class Page(StrEnum):
    """Where a section's Markdown is written."""
    SUMMARY = "summary"  # summary.md beside results.json, and report.md
    DETAILS = "details"  # details.md: every long table of a run


@dataclass
class View:
    """What the sections' Markdown is written from: a results document, with the benchmarks beside it."""
    doc: dict
    benchmarks: list[dict]
    speed_plot: str | None = None

    @property
    def records(self) -> list:
        return self.doc["records"]

    @cached_property
    def findings(self) -> Findings:
        return collect(self.doc, len(summary.disagreement_rows(self.records)))


@dataclass(frozen=True)
class Section:
    id: str  # the HTML anchor and the body template's name
    title: str  # its heading in both renderers
    markdown: Callable[[View], list[str]] | None = None  # None: in index.html only
    page: Page | None = None  # where its Markdown goes
    html: bool = True  # index.html shows it
    label: str = ""  # its name in index.html's navigation (default: the title)
    when: str | None = None  # shown only where this part of the page's context is not empty
    heading: bool = True  # the loop writes the heading (the findings write their own two columns)
    more: tuple[tuple[str, str], ...] = ()  # further anchors the navigation names inside the section

    @property
    def nav(self) -> tuple[tuple[str, str], ...]:
        return ((self.id, self.label or self.title), *self.more)


def _agreement(view: View) -> list[str]:
    return [line for q in ("value", *summary.GRADIENTS) for line in (summary.agreement_matrix(view.records, q) + [""])]


def _known(view: View) -> list[str]:
    return summary.known_section(view.records, view.doc.get("stale_known", []), view.doc.get("known_divergences"))


SECTIONS: tuple[Section, ...] = (
    Section("versions", "Versions side by side", label="Versions", when="versions"),
    Section("findings", "Findings", lambda v: summary.findings_section(v.findings), Page.SUMMARY, heading=False,
            more=(("heatmap", "At a glance"),)),
    Section("choose", "Which function should I use?", lambda v: choose.short(v.records), Page.SUMMARY, label="Which function"),
    Section("unexplained", "Unexplained fails and errors", lambda v: summary.failures(v.records), Page.SUMMARY, html=False),
    Section("speed", "Speed", lambda v: speed_section(v.benchmarks, v.speed_plot)[2:], Page.SUMMARY, when="speed_tables"),
    Section("reruns", "Re-run a failure", lambda v: summary.reruns(v.records), Page.DETAILS, html=False),
    Section("naive-fails", "The naive formulas' fails and errors (expected to break)",
            lambda v: summary.failures(v.records, limit=200, naive=True), Page.DETAILS, html=False),
    Section("overview", "Overview", lambda v: summary.overview(v.records), Page.DETAILS),
    Section("naive-vs-fused", "Naive formula against fused functions", lambda v: summary.naive_vs_fused(v.records), Page.DETAILS,
            html=False),
    Section("disagreements", "Where modes and devices disagree (eager / compiled, CPU / GPU)",
            lambda v: summary.mode_device_disagreements(v.records), Page.DETAILS, label="Modes and devices"),
    Section("properties", "Batch invariance and determinism", lambda v: properties_table.section(v.records), Page.DETAILS,
            label="Properties"),
    Section("invalid", "Behaviour on invalid input", lambda v: summary.invalid_behaviour(v.records), Page.DETAILS, label="Invalid input"),
    Section("agreement", "Pairwise agreement of frameworks (both match the oracle / both ran)", _agreement, Page.DETAILS,
            label="Agreement"),
    Section("backends", "The same public call on different backends", lambda v: summary.cross_backend_section(v.records), Page.DETAILS,
            label="Backends"),
    Section("gradients", "Gradient agreement", lambda v: summary.gradient_section(v.records), Page.DETAILS, label="Gradients"),
    Section("known", "Known divergences: what each framework computes instead, and why", _known, Page.DETAILS, label="Known divergences"),
    Section("plots", "Error against logit scale", label="Error plot"),
    Section("cases", "Cases"),
    Section("environment", "Environment"),
)


def on_page(page: Page) -> list[Section]:
    return [s for s in SECTIONS if s.page is page]


def in_html(context: dict) -> list[Section]:
    """The sections index.html shows, given its template context (a section with `when` needs that part non-empty)."""
    return [s for s in SECTIONS if s.html and (s.when is None or context.get(s.when))]


def markdown(page: Page, view: View) -> list[str]:
    """A page's sections in Markdown: each heading and body, in the registry's order (an empty body is left out)."""
    lines: list[str] = []
    for s in on_page(page):
        body = s.markdown(view) if s.markdown else []
        if body:
            lines += ["", f"## {s.title}", "", *body]
    return lines
