"""What the benches read about processes and the machine while they run: a process's CPU
time, and how busy the whole machine was over a stretch of time (the 1-minute load average
at its start and end, and how many cores' worth of CPU everything together used, from
/proc/stat). The machine is shared, so a figure means little without the second."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


def cpu_seconds(pid: int) -> float:
    """User and system CPU time the process has used so far."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, all cores (/proc/stat)."""
    ticks = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = ticks[3] + ticks[4]  # idle + iowait
    total = sum(ticks[:8])  # guest time is already in user
    hz = os.sysconf("SC_CLK_TCK")
    return (total - idle) / hz, total / hz


@dataclass(frozen=True)
class MachineLoad:
    """The machine over one stretch of a bench: load average before and after, and the
    cores' worth of CPU all its processes used in between."""

    load_before: float
    load_after: float
    busy_cores: float

    def describe(self) -> str:
        cores = os.cpu_count() or 1
        return (
            f"machine: {self.busy_cores:.2f} of {cores} cores busy; "
            f"load average (1 min) {self.load_before:.2f} -> {self.load_after:.2f}"
        )


class LoadWatch:
    """Started at the beginning of a stretch, :meth:`stop` at its end."""

    def __init__(self) -> None:
        self._load = os.getloadavg()[0]
        self._busy, self._total = machine_cpu()

    def stop(self) -> MachineLoad:
        busy, total = machine_cpu()
        cores = os.cpu_count() or 1
        share = (busy - self._busy) / (total - self._total) if total > self._total else 0.0
        return MachineLoad(self._load, os.getloadavg()[0], share * cores)
