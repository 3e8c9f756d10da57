"""Docs that cannot drift: every file path that a doc or a comment cites exists, and every section it cites by name
("docs/tolerance.md, "The fused linear cross-entropy"") is a heading of that file. Paths under reports/ are what the
commands write (reports/README.md says which few are committed), so they are not citations."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PATH = re.compile(r"(?<![\w/.-])((?:conformance|tests|docs|examples|constraints|\.ci)/[\w./-]*[\w/])")
SECTION = re.compile(r"((?:README(?:\.md)?|docs/[\w-]+\.md))(?:'s)?,? (?:section )?\"([^\"]{3,80})\"")


def _sources() -> list[Path]:
    return [*ROOT.glob("docs/*.md"), ROOT / "README.md", ROOT / "reports" / "README.md", *(ROOT / "conformance").rglob("*.py"),
            *(ROOT / "conformance" / "corpus" / "data").rglob("*.md"), *(p for p in (ROOT / "tests").glob("*.py") if p.name != "test_citations.py"),
            *(ROOT / ".ci").glob("*")]


def cited_paths(text: str) -> list[str]:
    """The repository paths a text cites (globs and placeholders left out)."""
    found = [m.group(1).rstrip(".") for m in PATH.finditer(text)]
    return [p for p in found if not any(c in p for c in "*<>{")]


def cited_sections(text: str) -> list[tuple[str, str]]:
    return [("README.md" if doc.startswith("README") else doc, section) for doc, section in SECTION.findall(text)]


def _headings(path: Path) -> list[str]:
    return [line.lstrip("#").strip().lower() for line in path.read_text().splitlines() if line.startswith("#")]


def test_every_cited_path_exists():
    missing = [f"{src.relative_to(ROOT)}: {p}" for src in _sources() if src.is_file()
               for p in cited_paths(src.read_text(errors="replace")) if not (ROOT / p).exists()]
    assert not missing, "cited paths that do not exist:\n" + "\n".join(missing)


def test_every_cited_section_is_a_heading():
    wrong = [f"{src.relative_to(ROOT)}: {doc} \"{section}\"" for src in _sources() if src.is_file()
             for doc, section in cited_sections(src.read_text(errors="replace"))
             if not (ROOT / doc).exists() or not any(section.lower() in h for h in _headings(ROOT / doc))]
    assert not wrong, "cited sections that are not headings of the file:\n" + "\n".join(wrong)


def test_the_checks_can_fail():
    assert cited_paths("see conformance/judge/oracle_gone.py and `docs/nowhere.md`") == ["conformance/judge/oracle_gone.py", "docs/nowhere.md"]
    assert cited_paths("written to reports/ci/results.json; conformance/*.py") == []  # outputs and globs are no citations
    assert not (ROOT / "conformance/judge/oracle_gone.py").exists()
    assert cited_sections('(the README\'s "A section that moved")') == [("README.md", "A section that moved")]
    assert not any("a section that moved" in h for h in _headings(ROOT / "README.md"))
