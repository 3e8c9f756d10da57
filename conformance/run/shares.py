"""One run split across machines (`conformance run --shard K/N`), put back together.

Each machine's results file says which share of which plan it holds (`selection.machine`: index, count, the plan's
fingerprint, its shards). Merged, the shares are one run exactly when every index 1..N of the plan is there and
each share finished; a missing share is named. Whether a registry entry is stale can only be judged on the whole
run, so each share lists every entry with its counts and the merge judges them here.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Joined:
    """What the shares of split runs add to a merged results document."""
    missing: list[dict] = field(default_factory=list)  # {"shard", "why"} per absent share, as an incomplete run's "lost"
    stale: list[dict] = field(default_factory=list)
    selection: dict | None = None  # the whole run's selection, where the merged files are exactly one split run


def join(docs: list[dict]) -> Joined:
    """Check and combine the machine shares among `docs` (results documents; files that are not shares pass by)."""
    plans: dict[str, list[dict]] = {}
    for doc in docs:
        machine = (doc.get("selection") or {}).get("machine")
        if isinstance(machine, dict):
            plans.setdefault(str(machine.get("plan")), []).append(doc)
    out = Joined()
    for plan, shares in plans.items():
        count = shares[0]["selection"]["machine"]["count"]
        present = {d["selection"]["machine"]["index"] for d in shares}
        gone = [k for k in range(1, count + 1) if k not in present]
        out.missing += [{"shard": f"share {k}/{count} of plan {plan}", "why": f"its results file (conformance run --shard {k}/{count}) "
                         "is not among the merged files"} for k in gone]
        if not gone:
            out.stale += _stale(shares)
    if len(plans) == 1 and len(docs) == len(next(iter(plans.values()))) and not out.missing:
        selection = dict(docs[0]["selection"])
        selection.pop("machine")
        out.selection = selection
    return out


def _stale(shares: list[dict]) -> list[dict]:
    """Entries whose records ran in some share and failed in none, where the whole selection covers them."""
    totals: dict[str, dict] = {}
    for doc in shares:
        for e in doc.get("known_divergences", []):
            t = totals.setdefault(e["id"], {**e, "records": 0, "beyond": 0, "exercised": 0})
            for key in ("records", "beyond", "exercised"):
                t[key] += int(e.get(key) or 0)
    return [{"id": t["id"], "link": t["link"], "exercised": t["exercised"], "file": t.get("file", ""),
             "why": f"its {t['exercised']} record(s) ran and none failed: the divergence is gone"}
            for t in totals.values() if t.get("covered") and t["exercised"] and not t["records"] and not t["beyond"]]
