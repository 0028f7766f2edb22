"""The run's table, one row per scenario, and its machine-readable last line."""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from bench.chaos.ledger import Figures

COLUMNS = (
    ("scenario", 26),
    ("trials", 6),
    ("plays", 6),
    ("expected", 8),
    ("delivered", 9),
    ("lost", 5),
    ("doubled", 7),
    ("extra", 5),
    ("poison", 6),
    ("dead-lettered", 13),
    ("recovery p50/max s", 18),
)


def _recovery(values: Sequence[float]) -> str:
    if not values:
        return "-"
    return f"{statistics.median(values):.1f} / {max(values):.1f}"


def table(rows: Sequence[Figures]) -> list[str]:
    header = "  ".join(
        name.rjust(width) if i else name.ljust(width) for i, (name, width) in enumerate(COLUMNS)
    )
    lines = [header, "-" * len(header)]
    total = Figures("total")
    for row in rows:
        lines.append(_line(row))
        for name in (
            "trials",
            "plays",
            "expected",
            "delivered",
            "lost",
            "doubled",
            "extra",
            "poison",
            "dead_lettered",
        ):
            setattr(total, name, getattr(total, name) + getattr(row, name))
        total.recovery_s += row.recovery_s
    lines += ["-" * len(header), _line(total)]
    return lines


def _line(row: Figures) -> str:
    values = [
        row.scenario,
        str(row.trials),
        str(row.plays - row.unsent) + (f"+{row.unsent}u" if row.unsent else ""),
        str(row.expected),
        str(row.delivered),
        str(row.lost),
        str(row.doubled),
        str(row.extra),
        str(row.poison),
        str(row.dead_lettered),
        _recovery(row.recovery_s),
    ]
    return "  ".join(
        v.rjust(width) if i else v.ljust(width)
        for i, (v, (_, width)) in enumerate(zip(values, COLUMNS, strict=True))
    )


def result_line(rows: Sequence[Figures], rss_slope_mb_per_h: float | None, **extra: object) -> str:
    trials = sum(r.trials for r in rows)
    lost = sum(r.lost for r in rows)
    doubled = sum(r.doubled for r in rows)
    recoveries = [v for r in rows for v in r.recovery_s]
    slope = "n/a" if rss_slope_mb_per_h is None else f"{rss_slope_mb_per_h:.1f}"
    tail = "".join(f" {k}={v}" for k, v in extra.items())
    return (
        f"RESULT trials={trials} lost={lost} doubled={doubled} "
        f"max_recovery_s={max(recoveries, default=0.0):.1f} rss_slope_mb_per_h={slope}{tail}"
    )
