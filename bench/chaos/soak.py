"""What a long run costs the machine: each process's resident memory and open file
descriptors, Postgres's connections and the size of the tables that must not grow
without bound (outbox, processed_events, pacing_slots; play_sessions and scrobbles, the
history, for comparison). Sampled every so often; the memory slope is a least-squares
line through each process's samples (one incarnation: a restart starts a new line)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Final

import asyncpg

from bench.chaos.stack import KILLABLE, Stack

TABLES: Final = (
    "outbox",
    "processed_events",
    "pacing_slots",
    "oauth_states",
    "play_sessions",
    "scrobbles",
)
# A slope from a shorter stretch says more about start-up than about leaks.
MIN_SPAN_S: Final = 600.0


@dataclass
class Sample:
    at: float
    rss_mb: dict[tuple[str, int], float]  # (process, incarnation) -> MB
    fds: dict[str, int]
    pg_connections: int
    rows: dict[str, int]
    bytes: dict[str, int]


def slope_per_hour(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (seconds, value) points, per hour."""
    if len(points) < 3:
        return None
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    spread = sum((t - mean_t) ** 2 for t, _ in points)
    if spread == 0:
        return None
    return sum((t - mean_t) * (v - mean_v) for t, v in points) / spread * 3600


@dataclass
class Sampler:
    stack: Stack
    samples: list[Sample] = field(default_factory=list)
    last: float = 0.0

    async def maybe_sample(self, every_s: float) -> None:
        if time.monotonic() - self.last >= every_s:
            await self.sample()

    async def sample(self) -> None:
        self.last = time.monotonic()
        rss: dict[tuple[str, int], float] = {}
        fds: dict[str, int] = {}
        for name in KILLABLE:
            service = self.stack.services.get(name)
            if service is None:
                continue
            memory, files = service.rss_mb(), service.open_fds()
            if memory is not None:
                rss[(name, service.starts)] = memory
            if files is not None:
                fds[name] = files
        rows: dict[str, int] = {}
        sizes: dict[str, int] = {}
        connections = -1
        try:
            conn = await asyncpg.connect(self.stack.direct_dsn, timeout=10)
        except (OSError, asyncpg.PostgresError, TimeoutError):
            conn = None
        if conn is not None:
            try:
                connections = int(
                    await conn.fetchval(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    )
                )
                for table in TABLES:
                    rows[table] = int(await conn.fetchval(f"SELECT count(*) FROM {table}"))  # noqa: S608
                    sizes[table] = int(
                        await conn.fetchval("SELECT pg_total_relation_size($1::regclass)", table)
                    )
            finally:
                await conn.close()
        self.samples.append(Sample(time.monotonic(), rss, fds, connections, rows, sizes))

    def _series(self) -> dict[tuple[str, int], list[tuple[float, float]]]:
        series: dict[tuple[str, int], list[tuple[float, float]]] = {}
        for sample in self.samples:
            for key, value in sample.rss_mb.items():
                series.setdefault(key, []).append((sample.at, value))
        return series

    def rss_slope_mb_per_h(self) -> float | None:
        """The steepest memory slope of any process over a long enough stretch."""
        slopes = [
            slope
            for points in self._series().values()
            if points[-1][0] - points[0][0] >= MIN_SPAN_S
            and (slope := slope_per_hour(points)) is not None
        ]
        return max(slopes, default=None)

    def report(self) -> list[str]:
        if len(self.samples) < 2:
            return []
        first, last = self.samples[0], self.samples[-1]
        hours = (last.at - first.at) / 3600
        lines = [f"resources over {hours * 60:.0f} min ({len(self.samples)} samples):"]
        for key, points in sorted(self._series().items()):
            slope = slope_per_hour(points)
            span = (points[-1][0] - points[0][0]) / 60
            lines.append(
                f"  rss {key[0]} (start {key[1]}): {points[0][1]:.0f} -> {points[-1][1]:.0f} MB "
                f"over {span:.0f} min, slope " + ("n/a" if slope is None else f"{slope:+.1f} MB/h")
            )
        fds = {name: [s.fds.get(name) for s in self.samples] for name in KILLABLE}
        for name, values in fds.items():
            seen = [v for v in values if v is not None]
            if seen:
                lines.append(
                    f"  open fds {name}: min {min(seen)}, max {max(seen)}, last {seen[-1]}"
                )
        conns = [s.pg_connections for s in self.samples if s.pg_connections >= 0]
        if conns:
            lines.append(
                f"  postgres connections: min {min(conns)}, max {max(conns)}, last {conns[-1]}"
            )
        for table in TABLES:
            rows = [s.rows[table] for s in self.samples if table in s.rows]
            sizes = [s.bytes[table] for s in self.samples if table in s.bytes]
            if rows:
                lines.append(
                    f"  {table}: rows {rows[0]} -> max {max(rows)} -> last {rows[-1]}, "
                    f"{sizes[0] / 1e6:.1f} -> {sizes[-1] / 1e6:.1f} MB"
                )
        return lines
