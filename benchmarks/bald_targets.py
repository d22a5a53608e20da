"""Issue 17's targets for BALD, checked on a ``bald_paired_dev`` record (pure functions of its ``table``,
``paired`` and ``clicks_on_error`` sections; no torch).

The record holds mIoU after interactions 1, 5 and 10, so "at every budget" is checked at the budgets it holds
(5 and 10; after interaction 1 every policy has the same first prompt).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

__all__ = ["TargetCheck", "miou", "gap_closed", "check_targets"]

Record = Mapping[str, Any]
#: what one target says, whether it is met, and the numbers behind it
TargetCheck = dict[str, Any]


def miou(record: Record, group: str, first: str, policy: str, at: int) -> float | None:
    """mIoU after interaction ``at`` of ``first`` + ``policy`` on ``group`` (a domain or ``all``), or None."""
    for row in record["table"].get(group, []):
        if row["first"] == first and row["policy"] == policy:
            return row.get(f"miou@{at}")
    return None


def gap_closed(record: Record, group: str, first: str = "box", at: int = 5) -> float | None:
    """The share of the gap from ``random`` to ``oracle`` that ``bald`` closes at mIoU@``at``."""
    values = [miou(record, group, first, p, at) for p in ("random", "oracle", "bald")]
    if any(v is None for v in values):
        return None
    low, high, bald = values
    return None if high - low <= 0 else (bald - low) / (high - low)


def _paired(record: Record, group: str, first: str, other: str, at: int) -> Record | None:
    for row in record["paired"].get(group, []):
        if row["first"] == first and row["other_policy"] == other and row["at"] == at:
            return row
    return None


def _count(domains: Sequence[str], ok) -> tuple[int, list[str]]:
    met = [d for d in domains if ok(d)]
    return len(met), met


def check_targets(record: Record, first: str = "box") -> list[TargetCheck]:
    """Each of issue 17's targets for ``first`` (the box-first protocol unless said), on the record's domains."""
    domains = list(record["domains"])
    checks: list[TargetCheck] = []

    def ahead(d: str, other: str) -> bool:
        rows = [_paired(record, d, first, other, k) for k in (5, 10)]
        return all(r is not None and r["mean"] > 0 for r in rows)

    others = [p for p in ("entropy", "random", "bald_pixel") if p in record["policies"]]
    n, met = _count(domains, lambda d: all(ahead(d, o) for o in others))
    checks.append({"target": f"bald ahead of {', '.join(others)} at mIoU@5 and @10 on >= 4 of the domains",
                   "met": n >= 4, "value": f"{n} of {len(domains)}", "domains": met})
    n, met = _count(domains, lambda d: (r := _paired(record, d, first, "entropy", 5)) is not None and r["low"] > 0)
    checks.append({"target": "interval of bald - entropy at mIoU@5 above zero on >= 2 domains", "met": n >= 2,
                   "value": f"{n} of {len(domains)}", "domains": met})
    n, met = _count(domains, lambda d: (r := _paired(record, d, first, "random_error", 5)) is not None
                    and r["mean"] >= 0)
    checks.append({"target": "bald at least as good as random_error at mIoU@5 on >= 4 domains", "met": n >= 4,
                   "value": f"{n} of {len(domains)}", "domains": met})
    closed = {d: gap_closed(record, d, "box", 5) for d in domains}
    checks.append({"target": "bald closes >= 60 % of the random -> oracle gap at mIoU@5 on every domain, box first",
                   "met": all(c is not None and c >= 0.6 for c in closed.values()),
                   "value": ", ".join(f"{d} {'-' if c is None else f'{100 * c:.0f} %'}" for d, c in closed.items()),
                   "domains": [d for d, c in closed.items() if c is not None and c >= 0.6]})
    shares = [r for r in record["clicks_on_error"].get("all", []) if r["policy"] == "bald" and r["first"] == first]
    share = shares[0]["share"] if shares else None
    checks.append({"target": "at least half of bald's clicks land on an error pixel", "met": share is not None
                   and share >= 0.5, "value": "-" if share is None else f"{100 * share:.0f} %", "domains": []})
    if "one_shot" in record["policies"]:
        n, met = _count(domains, lambda d: all((r := _paired(record, d, f, "one_shot", k)) is not None
                                               and r["mean"] > 0 for f in ("box", "click") for k in (5, 10)))
        checks.append({"target": "bald beats the one-shot baseline at every recorded budget (5, 10), both first "
                                 "prompts, on every domain", "met": n == len(domains),
                       "value": f"{n} of {len(domains)}", "domains": met})
    return checks
