"""The known-divergence registry: data (the bundled `data/known/divergences.yaml`, plus a project's own files), not code.

Each entry matches result records by framework, implementation, op, quantity, dtype, mode, device, case
pattern (glob on the full case id) and package version ranges (`versions: {<package>: "<0.2.7"}`, PEP 440; a
plain string applies to the framework's own package, under whichever of its wheels' names: own_version), and says why they differ: a bug or a design choice,
with an upstream link. A fail or error record that an entry matches gets status `known` and the entry's link. The registry is a function:
`judge` returns the judged record and what it did to the entries, `apply` a run's records and each entry's Tally,
from which `stale` says which entries are out of date; nothing in it keeps count between calls.

An entry says what kind of record it explains (`explains`: accuracy, invalid-input, error, value; record_kind) and
matches no record of another kind (record_kinds). It may bound what it explains further: `behaviours` (the behaviours it covers, e.g. [all_nan, nonfinite]) and
`max_tol_ratio` (the largest error, as a multiple of the tolerance, it covers). A record beyond either stays a
fail, marked "beyond known divergence X": a framework that got much worse inside a registered divergence is news.

Entries are checked when they are loaded: every framework, op, quantity, dtype, mode and device pattern must
name something that exists, and every case pattern must match a case of the corpus, so a renamed case or a
misspelled framework is an error (exit 2) instead of an entry that silently never matches.

An entry whose records ran and none of them failed is *stale*: the divergence is gone (fixed upstream, or
the case changed). That is judged only when the run covered everything the entry selects (every corpus case
its patterns match, every dtype, mode, op and quantity it names): a narrowed run says nothing about the rest.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from ..corpus import bundled
from ..corpus import conditions as case_conditions
from ..corpus.safe_yaml import YamlError, safe_load
from ..model.names import BEHAVIOURS, DEVICES, DTYPES, MODES, OPS, QUANTITIES
from ..model.record import UNEXPLAINED, Judgement, Record, judged
from ..model.selection import matches
from ..model.status import Status

MATCH_FIELDS = ("framework", "impl", "op", "quantity", "dtype", "mode", "device", "case")
ENTRY_FIELDS = {"id", "match", "when", "kind", "explains", "reason", "link", "versions", "statuses", "behaviours", "max_tol_ratio",
                "varies"}
KINDS = ("bug", "design")
# What an entry explains; it matches records of that kind only (record_kind):
#   accuracy       a finite answer to a valid input, off by more than the tolerance
#   invalid-input  what the framework did with an input that has no answer (a silent value, NaN, an error)
#   error          an error raised where a value was expected
#   value          a value (finite or not) on the valid cases the entry names: a definition of its own
EXPLAINS = ("accuracy", "invalid-input", "error", "value")
# The closed sets a pattern of these fields must match something in (case and framework are checked against the
# corpus and the registered adapters, impl against what the frameworks that ran offer).
NAMED_FIELDS = {"op": OPS, "quantity": QUANTITIES, "dtype": DTYPES, "mode": MODES, "device": DEVICES}


class RegistryError(ValueError):
    pass


@dataclass(frozen=True)
class Entry:
    id: str
    match: dict[str, list[str]]
    kind: str
    reason: str
    link: str
    explains: tuple[str, ...] = EXPLAINS  # the kinds of record it matches (EXPLAINS); the bundled entries name one or two
    versions: dict[str, SpecifierSet] = field(default_factory=dict)  # package -> range ("" = the framework's own)
    statuses: tuple[Status, ...] = UNEXPLAINED
    behaviours: tuple[str, ...] | None = None  # None: any behaviour
    max_tol_ratio: float | None = None  # None: unbounded
    when: dict | None = None  # conditions on the case's inputs (corpus/conditions.py): None, any case its patterns match
    origin: str = ""  # the registry file it came from
    varies: bool = False  # the records it explains answer differently from run to run: the gate compares their status only

    def selects(self, record: Record, packages: dict[str, str] | None = None, conditions: dict | None = None) -> bool:
        """Whether this entry speaks for the record; `packages` are the installed versions of the record's framework
        (environment.frameworks[fw].packages), `conditions` its case's (corpus.conditions.of). A range on a package
        that is not recorded does not select, nor does an entry with conditions where the case's are unknown, nor a
        record of a kind the entry does not explain (an accuracy entry never speaks for a silent answer or a NaN)."""
        if not set(record_kinds(record)) & set(self.explains):
            return False
        if self.when is not None and (conditions is None or not case_conditions.meets(conditions, self.when)):
            return False
        for key, patterns in self.match.items():
            values = (record.impl_id, record.impl) if key == "impl" else (getattr(record, key),)
            if not any(v is not None and matches(str(v), patterns) for v in values):  # impl: the stable id or the label
                return False
        packages = packages or {}
        for package, spec in self.versions.items():
            installed = packages.get(package) if package else own_version(record.framework, packages)
            try:
                if installed is None or Version(installed.split("+")[0]) not in spec:
                    return False
            except InvalidVersion:
                return False
        return True

    def exceeded_by(self, record: Record) -> str | None:
        """Why the record is worse than this entry explains, or None when it is within the entry's bounds."""
        # an invalid input's answered entries that are wrong are finite values: their behaviour, not the signal's beside them
        behaviour = "finite" if record.answered_wrong else record.behaviour
        if self.behaviours is not None and behaviour not in self.behaviours:
            return f"behaviour {behaviour} (the entry covers {', '.join(self.behaviours)})"
        ratio = record.tol_ratio
        if self.max_tol_ratio is not None and ratio is not None and ratio > self.max_tol_ratio:
            return f"error {ratio:.3g}x its tolerance (the entry covers up to {self.max_tol_ratio:g}x)"
        return None

    def _names_no_naive_formula(self) -> bool:
        """Whether every implementation the entry names is one of the frameworks' own: it lists them, by stable id
        (a naive formula's is `<framework>/naive/...`), and none is a glob that could reach a naive one."""
        patterns = self.match.get("impl") or []
        return bool(patterns) and not any("naive" in p or set(p) & set("*?[") for p in patterns)

    def covered_by(self, selection: dict, ran_cases: set[str], corpus_cases: set[str]) -> bool:
        """The run exercised all of this entry: its frameworks, every corpus case, op, quantity, dtype and mode it names."""
        for key, chosen in (("framework", selection.get("frameworks")), ("dtype", selection.get("dtypes")),
                            ("mode", selection.get("modes")), ("op", selection.get("ops")), ("quantity", selection.get("quantities"))):
            if not chosen:
                continue  # not narrowed on this field
            universe = chosen if key == "framework" else NAMED_FIELDS[key]
            wanted = {n for n in universe if matches(n, self.match.get(key, ["*"]))}
            if not wanted or not wanted <= set(chosen):
                return False
        if selection.get("impls"):
            return False  # a run narrowed to some implementations cannot speak for an entry's others
        if selection.get("naive") is False and not self._names_no_naive_formula():
            return False  # nor can a run without the naive formulas speak for an entry that may explain one
        cases = {c for c in corpus_cases if matches(c, self.match.get("case", ["*"]))}
        return cases <= ran_cases


def record_kinds(record: Record) -> tuple[str, ...]:
    """The kinds of explanation (EXPLAINS) that can speak for a record: an invalid input's behaviour (or the accuracy of
    its entries that have an answer, where one of those is wrong); an error where
    a value was expected; a finite answer to a valid input (accuracy, or a value on a named case); a non-finite one
    (a value on a named case only: an accuracy entry never explains a NaN)."""
    if record.invalid:
        # a wrong value where an invalid input's entry has an answer (the row beside a NaN row) is an accuracy fail
        return ("accuracy",) if record.answered_wrong else ("invalid-input",)
    if record.behaviour == "error":
        return ("error",)
    return ("accuracy", "value") if record.behaviour == "finite" else ("value",)


def load(paths: Path | Sequence[Path] | None = None, frameworks: Iterable[str] | None = None,
         case_ids: Iterable[str] | None = None) -> list[Entry]:
    """Read and check the registry: one file or several (a project's own entries beside the bundled ones; default:
    the bundled registry alone), every entry checked alike and every id unique across them. With `frameworks` (the
    registered ones) and `case_ids` (the corpus), every framework and case pattern must match one of them."""
    if paths is None:
        paths = [bundled.registry_file()]
    elif isinstance(paths, (str, Path)):
        paths = [Path(paths)]
    entries: list[Entry] = []
    seen: dict[str, str] = {}
    case_ids = None if case_ids is None else tuple(case_ids)
    for path in paths:
        entries.extend(_load_file(Path(path), frameworks, case_ids, seen))
    return entries


def _load_file(path: Path, frameworks: Iterable[str] | None, case_ids: tuple[str, ...] | None, seen: dict[str, str]) -> list[Entry]:
    try:
        doc = safe_load(Path(path)) or {}
    except YamlError as exc:
        raise RegistryError(f"{path}: {exc}") from None
    raw_entries = doc.get("divergences", []) if isinstance(doc, dict) else None
    if not isinstance(raw_entries, list):
        raise RegistryError(f"{path}: must be a mapping with a 'divergences' list")
    entries = []
    for i, raw in enumerate(raw_entries):
        where = f"{path}: entry {raw.get('id', '#' + str(i)) if isinstance(raw, dict) else '#' + str(i)}"
        if not isinstance(raw, dict):
            raise RegistryError(f"{where}: must be a mapping")
        unknown = sorted(str(k) for k in set(raw) - ENTRY_FIELDS)
        if unknown:
            raise RegistryError(f"{where}: unknown field '{unknown[0]}'; known: {', '.join(sorted(ENTRY_FIELDS))}")
        for key in ("id", "match", "kind", "explains", "reason", "link"):
            if not raw.get(key):
                raise RegistryError(f"{where}: field '{key}' is required")
        if "when" in raw and (problem := case_conditions.check(raw["when"])):
            raise RegistryError(f"{where}: field 'when' {problem}")
        if raw["id"] in seen:
            raise RegistryError(f"{where}: duplicate id" + ("" if seen[raw["id"]] == str(path) else f" (also in {seen[raw['id']]})"))
        seen[raw["id"]] = str(path)
        if raw["kind"] not in KINDS:
            raise RegistryError(f"{where}: field 'kind' must be one of {', '.join(KINDS)}")
        match = raw["match"]
        if not isinstance(match, dict) or set(match) - set(MATCH_FIELDS) or "framework" not in match:
            raise RegistryError(f"{where}: field 'match' must name a framework and only {', '.join(MATCH_FIELDS)}")
        entry = Entry(
            id=str(raw["id"]), match={k: [str(x) for x in (v if isinstance(v, list) else [v])] for k, v in match.items()},
            kind=raw["kind"], reason=" ".join(str(raw["reason"]).split()), link=str(raw["link"]), explains=_explains(raw, match, where),
            versions=_versions(raw.get("versions"), where), statuses=tuple(map(Status, _names(raw, "statuses", UNEXPLAINED, where))),
            behaviours=_names(raw, "behaviours", BEHAVIOURS, where, None), max_tol_ratio=_bound(raw.get("max_tol_ratio"), where),
            when=raw.get("when"), origin=str(path), varies=_flag(raw, "varies", where))
        _check_patterns(entry, where, frameworks, case_ids)
        entries.append(entry)
    return entries


def _explains(raw: dict, match: dict, where: str) -> tuple[str, ...]:
    """`explains`: one kind, or a list of them; "value" and "accuracy" on more than named cases would explain anything."""
    value = raw["explains"]
    kinds = tuple(value) if isinstance(value, list) else (value,)
    if not kinds or not all(k in EXPLAINS for k in kinds) or len(set(kinds)) != len(kinds):
        raise RegistryError(f"{where}: field 'explains' must be one of {', '.join(EXPLAINS)}, or a list of them")
    if "value" in kinds and not match.get("case") and not raw.get("when"):
        raise RegistryError(f"{where}: an entry that explains 'value' must name its cases (match.case) or their conditions (when)")
    return kinds


def _names(raw: dict, key: str, allowed: tuple[str, ...], where: str, default=...) -> tuple[str, ...] | None:
    if key not in raw:
        return tuple(allowed) if default is ... else default
    value = raw[key]
    if not isinstance(value, list) or not value or not all(v in allowed for v in value):
        raise RegistryError(f"{where}: field '{key}' must be a non-empty list drawn from {', '.join(allowed)}")
    return tuple(value)


def _flag(raw: dict, key: str, where: str) -> bool:
    value = raw.get(key, False)
    if not isinstance(value, bool):
        raise RegistryError(f"{where}: field '{key}' must be true or false")
    return value


def _bound(raw, where: str) -> float | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not raw > 0:
        raise RegistryError(f"{where}: field 'max_tol_ratio' must be a positive number")
    return float(raw)


def own_version(framework: str, packages: dict[str, str]) -> str | None:
    """The framework's own release among its recorded distributions: the one named for it, else a build of it named
    "<framework>-<build>" (a CPU-only or one platform's wheel of the same release), so that an entry's plain
    `versions: "<2.17"` speaks for the framework whichever of its wheels a machine installed."""
    if framework in packages:
        return packages[framework]
    return next((v for k, v in sorted(packages.items()) if k.startswith(f"{framework}-")), None)


def _versions(raw, where: str) -> dict[str, SpecifierSet]:
    """`versions: "<0.5"` (the framework's own package) or `versions: {<package>: "<0.2.7", <other>: ">=0.9"}`."""
    if raw is None or raw == "":
        return {}
    items = raw.items() if isinstance(raw, dict) else [("", raw)]
    out = {}
    for package, spec in items:
        try:
            out[str(package)] = SpecifierSet(str(spec))
        except InvalidSpecifier:
            raise RegistryError(f"{where}: field 'versions' ({package or 'the framework'}: {spec!r}) is not a PEP 440 range") from None
    return out


def _check_patterns(entry: Entry, where: str, frameworks: Iterable[str] | None, case_ids: tuple[str, ...] | None) -> None:
    universes: dict[str, tuple[str, ...]] = dict(NAMED_FIELDS)
    if frameworks is not None:
        universes["framework"] = tuple(frameworks)
    if case_ids is not None:
        universes["case"] = case_ids
    for key, universe in universes.items():
        for pattern in entry.match.get(key, []):
            if not any(matches(name, [pattern]) for name in universe):
                what = {"case": "no case of the corpus", "framework": "no registered framework"}.get(key, f"no {key}")
                raise RegistryError(f"{where}: match.{key} {pattern!r} matches {what} (renamed or misspelled?)")


@dataclass(frozen=True)
class Touch:
    """What one record did to the entries that select it: the entry ids that exercised it, and the one that explained
    it (`matched`) or whose bounds it exceeds (`beyond`)."""
    exercised: tuple[str, ...] = ()
    matched: str | None = None
    beyond: str | None = None


@dataclass
class Tally:
    """What a run did with one entry: the records it selects (exercised), explains (matched), and selects but whose
    bounds they exceed (beyond)."""
    exercised: int = 0
    matched: int = 0
    beyond: int = 0


class Tallies(dict[str, Tally]):
    """Entry id -> its Tally, counted from the Touches of a run's records."""

    def add(self, touch: Touch) -> None:
        for entry_id in touch.exercised:
            self.of(entry_id).exercised += 1
        if touch.matched:
            self.of(touch.matched).matched += 1
        if touch.beyond:
            self.of(touch.beyond).beyond += 1

    def of(self, entry_id: str) -> Tally:
        return self.setdefault(entry_id, Tally())


def judge(record: Record, entries: Sequence[Entry], packages: dict[str, str] | None, conditions: dict | None = None) -> tuple[Record, Touch]:
    """The record as the registry judges it (`known` where a registered divergence explains its fail or error, within
    the entry's bounds; marked beyond an entry whose bounds it exceeds), and what it did to the entries (Touch).
    `packages`: the installed versions of the record's framework. An error the harness raised (its own inputs or
    oracle failed), or the calling code (an adapter's, a user's), says nothing about the framework: no entry explains
    it; nor does one explain a call that wrote into its inputs, or a call that did not run."""
    if record.overwritten or str((record.error or {}).get("where", "")).startswith(("harness", "code")) or not record.status.ran:
        return record, Touch()
    exercised, decided, beyond = [], None, None
    for entry in entries:
        if not entry.selects(record, packages, conditions):
            continue
        exercised.append(entry.id)
        if decided is not None or record.status not in entry.statuses or record.known is not None or record.beyond_known:
            continue
        why = entry.exceeded_by(record)
        decided = judged(record, Judgement(entry.id, entry.link, beyond=why or None))
        beyond = why and entry.id
    if decided is None:
        return record, Touch(tuple(exercised))
    return decided, Touch(tuple(exercised), matched=None if beyond else decided.known_id, beyond=beyond or None)


def apply(records: Iterable[Record], entries: Sequence[Entry], packages: dict[str, dict[str, str]],
          conditions: dict[str, dict] | None = None) -> tuple[list[Record], Tallies]:
    """`judge` over a whole run: the judged records and every entry's tally. `packages`: framework -> installed
    package versions; `conditions`: case id -> its conditions (corpus.conditions.of), for the entries that ask."""
    out, tallies = [], Tallies()
    for record in records:
        one, touch = judge(record, entries, packages.get(record.framework), (conditions or {}).get(record.case))
        out.append(one)
        tallies.add(touch)
    return out, tallies


def stale(entries: list[Entry], tallies: Tallies, selection: dict, ran_cases: set[str], corpus_cases: set[str],
          offered: dict[str, set[str]]) -> list[dict]:
    """Entries this run shows to be out of date, each {"id", "link", "why", "exercised"}: the divergence is gone
    (records ran, none failed: judged only where the run covered the whole entry), or the entry names an
    implementation that a framework which ran does not offer (`offered`: framework -> implementation names)."""
    out = []
    for e in entries:
        tally = tallies.get(e.id, Tally())
        ran = [names for fw, names in offered.items() if matches(fw, e.match["framework"])]
        all_ran = all(any(matches(fw, [p]) for fw in offered) for p in e.match["framework"])  # every framework it names
        # a pattern whose framework part is a glob ("*/naive/*") may rightly match nothing in the frameworks that ran
        # (a framework without naive formulas): only a pattern naming its framework can be shown renamed
        unknown = [p for p in e.match.get("impl", []) if all_ran and not any(ch in p.partition("/")[0] for ch in "*?[")
                   and not any(matches(n, [p]) for names in ran for n in names)]
        if unknown:
            out.append({"id": e.id, "link": e.link, "exercised": tally.exercised, "file": e.origin,
                        "why": f"no framework that ran offers an implementation {unknown[0]!r} (renamed?)"})
        elif tally.exercised and not tally.matched and not tally.beyond and e.covered_by(selection, ran_cases, corpus_cases):
            out.append({"id": e.id, "link": e.link, "exercised": tally.exercised, "file": e.origin,
                        "why": f"its {tally.exercised} record(s) ran and none failed: the divergence is gone"})
    return out
