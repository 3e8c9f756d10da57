"""The known-divergence registry: data (known/divergences.yaml), not code.

Each entry matches result records by framework, implementation, op, quantity, dtype, mode, device, case
pattern (glob on the full case id) and framework version range (PEP 440 specifier), and says why they
differ: a bug or a design choice, with an upstream link. A fail or error record that an entry matches
gets status `known` and the entry's link. An entry that matches no record while its framework ran is
*stale*: the divergence is gone (fixed upstream, or the case changed) and the entry should go too.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

MATCH_FIELDS = ("framework", "impl", "op", "quantity", "dtype", "mode", "device", "case")
KINDS = ("bug", "design")
DEFAULT_REGISTRY = Path(__file__).resolve().parent.parent / "known" / "divergences.yaml"


class RegistryError(ValueError):
    pass


@dataclass
class Entry:
    id: str
    match: dict[str, list[str]]
    kind: str
    reason: str
    link: str
    versions: SpecifierSet | None = None
    statuses: tuple[str, ...] = ("fail", "error")
    matched: int = field(default=0)
    exercised: int = field(default=0)  # records its fields select, whatever their status

    def selects(self, record: dict, version: str | None) -> bool:
        for key, patterns in self.match.items():
            value = str(record.get(key))
            # exact match first: implementation names such as "...[t]" contain glob characters
            if not any(value == p or fnmatch.fnmatchcase(value, p) for p in patterns):
                return False
        if self.versions is not None and version is not None:
            try:
                if Version(_leading_version(version)) not in self.versions:
                    return False
            except InvalidVersion:
                return False
        return True


def _leading_version(text: str) -> str:
    """'2.13.0+cpu' -> '2.13.0'; 'numpy 2.4, scipy 1.17' -> '2.4'; the first version-looking token."""
    for token in text.replace(",", " ").split():
        head = token.split("+")[0]
        if head[:1].isdigit():
            return head
    return text


def load(path: Path = DEFAULT_REGISTRY) -> list[Entry]:
    if not path.exists():
        return []
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise RegistryError(f"{path}: not valid YAML: {exc}") from None
    raw_entries = doc.get("divergences", []) if isinstance(doc, dict) else None
    if not isinstance(raw_entries, list):
        raise RegistryError(f"{path}: must be a mapping with a 'divergences' list")
    entries, seen = [], set()
    for i, raw in enumerate(raw_entries):
        where = f"{path}: entry {raw.get('id', '#' + str(i)) if isinstance(raw, dict) else '#' + str(i)}"
        if not isinstance(raw, dict):
            raise RegistryError(f"{where}: must be a mapping")
        for key in ("id", "match", "kind", "reason", "link"):
            if not raw.get(key):
                raise RegistryError(f"{where}: field '{key}' is required")
        if raw["id"] in seen:
            raise RegistryError(f"{where}: duplicate id")
        seen.add(raw["id"])
        if raw["kind"] not in KINDS:
            raise RegistryError(f"{where}: field 'kind' must be one of {', '.join(KINDS)}")
        match = raw["match"]
        if not isinstance(match, dict) or set(match) - set(MATCH_FIELDS) or "framework" not in match:
            raise RegistryError(f"{where}: field 'match' must name a framework and only {', '.join(MATCH_FIELDS)}")
        versions = None
        if raw.get("versions"):
            try:
                versions = SpecifierSet(str(raw["versions"]))
            except InvalidSpecifier:
                raise RegistryError(f"{where}: field 'versions' is not a PEP 440 specifier") from None
        statuses = raw.get("statuses", ["fail", "error"])
        entries.append(Entry(
            id=raw["id"], match={k: [str(x) for x in (v if isinstance(v, list) else [v])] for k, v in match.items()},
            kind=raw["kind"], reason=" ".join(str(raw["reason"]).split()), link=str(raw["link"]),
            versions=versions, statuses=tuple(statuses)))
    return entries


def apply(records: list[dict], entries: list[Entry], versions: dict[str, str]) -> None:
    """Mark matched fail/error records `known` (in place) and count matches per entry."""
    for entry in entries:
        entry.matched = entry.exercised = 0
    for record in records:
        for entry in entries:
            if not entry.selects(record, versions.get(record["framework"])):
                continue
            entry.exercised += 1
            if record["status"] in entry.statuses and record.get("known") is None:
                record["known_status"] = record["status"]  # what it would have been
                record["status"] = "known"
                record["known"] = entry.link
                record["known_id"] = entry.id
                entry.matched += 1


def stale(entries: list[Entry]) -> list[Entry]:
    """Entries whose records were produced in this run and none of them failed: the divergence is gone."""
    return [e for e in entries if e.exercised and not e.matched]
