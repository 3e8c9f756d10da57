"""The front door and the docs stay true: README.md is short and undated, every page it names exists, the corpus
index lists every bundled suite, and no code comment carries a dated measurement."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from conformance.corpus import bundled

ROOT = Path(__file__).resolve().parent.parent
DATED = re.compile(r"\b20\d\d-\d\d-\d\d\b")


def test_readme_is_a_short_undated_front_door():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 200
    assert not DATED.search(text), DATED.search(text)
    assert "python -m pytest" in text and "conformance run" in text


def test_every_page_the_readme_names_exists():
    text = (ROOT / "README.md").read_text()
    pages = set(re.findall(r"`((?:docs|examples|reports|conformance)/[\w./-]+)`", text))
    assert pages
    missing = sorted(p for p in pages if not (ROOT / p.rstrip("/")).exists())
    assert not missing, missing


def test_the_corpus_index_lists_every_bundled_suite():
    index = (bundled.cases_dir() / "README.md").read_text()
    listed = set(re.findall(r"^\| `([\w.-]+)` \| `([\w.-]+\.yaml)` \|", index, re.M))
    files = {(yaml.safe_load(p.read_text())["suite"], p.name) for p in bundled.cases_dir().glob("*.yaml")}
    assert listed == files


def test_no_dated_measurement_in_code():
    dated = [f"{p.relative_to(ROOT)}:{i}" for p in (ROOT / "conformance").rglob("*.py")
             for i, line in enumerate(p.read_text().splitlines(), 1) if DATED.search(line)]
    assert not dated, dated


def test_the_check_can_fail():
    assert DATED.search("measured on 2026-11-27") and not DATED.search("seed: 20261123")
