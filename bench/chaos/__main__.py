"""``python -m bench.chaos [--mode short|long|soak|calm]``: see ``bench/chaos/__init__.py``."""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import signal
import sys
from collections.abc import Awaitable
from pathlib import Path
from typing import TypeVar

from bench.chaos.harness import Options, execute
from bench.chaos.infra import REPO
from bench.chaos.scenarios import Scenario, catalogue
from bench.chaos.stack import KILLABLE

# Trials per scenario in each mode: (kills of each process, broker kills, Postgres kills,
# cuts, latency, loss, partitions, slow fakes, dropped answers, clock skews).
MODES = {
    "calm": (0, 0, 0, 0, 0, 0, 0, 0, 0, 0),
    "short": (1, 1, 1, 3, 1, 1, 1, 1, 1, 1),
    "long": (50, 10, 10, 9, 3, 3, 3, 8, 8, 4),
}
FIRST = ("kill -9 dispatcher-a", "kill -9 dispatcher-b", "kill -9 importer")
T = TypeVar("T")


class Stopped(Exception):
    """The run was told to stop (SIGTERM) and has torn down what it started."""


async def stoppable(work: Awaitable[T]) -> T:
    """``work``, cancelled by SIGTERM so that its ``finally`` blocks stop the services, the
    proxy and the private Kafka and Postgres (a run in the background ignores Ctrl-C, and
    a plain SIGTERM used to end the harness alone and leave all of those running)."""
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        return await work
    except asyncio.CancelledError:
        raise Stopped from None


def plan_for(
    counts: tuple[int, ...], scenarios: dict[str, Scenario], rng: random.Random
) -> list[tuple[Scenario, int]]:
    """Every trial of every scenario, in a random order; kills of a dispatcher first (the
    work they held is taken over only when its 2-minute lease runs out)."""
    kills, broker, postgres, cuts, latency, loss, partition, slow, drop, skew = counts
    wanted = {f"kill -9 {name}": kills for name in KILLABLE}
    others = (broker, postgres, cuts, latency, loss, partition, slow, drop, skew)
    names = [n for n in scenarios if n not in wanted]
    wanted.update(dict(zip(names, others, strict=True)))
    trials = [(scenarios[name], n) for name, count in wanted.items() for n in range(count)]
    rng.shuffle(trials)
    trials.sort(key=lambda t: t[0].name not in FIRST)
    return trials


def counts_of(text: str) -> tuple[int, ...]:
    counts = tuple(int(part) for part in text.split(","))
    if len(counts) != len(MODES["long"]) or min(counts) < 0:
        raise argparse.ArgumentTypeError(f"{len(MODES['long'])} numbers >= 0, comma-separated")
    return counts


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__)
    parser.add_argument("--mode", choices=[*MODES, "soak"], default="short")
    parser.add_argument("--state-dir", type=Path, default=REPO / ".local" / "chaos")
    parser.add_argument("--seed", type=int, default=19)
    parser.add_argument("--rate", type=float, help="playback events a second")
    parser.add_argument("--users", type=int, help="default: enough for the rate")
    parser.add_argument("--minutes", type=float, default=30.0, help="soak length")
    parser.add_argument("--window", type=float, help="seconds of latency, loss and skew")
    parser.add_argument("--partition", type=float, help="seconds of a partition (30)")
    parser.add_argument("--steady", type=float, help="seconds without faults first (20)")
    parser.add_argument(
        "--counts",
        type=counts_of,
        help="trials per scenario instead of the mode's: ten numbers, comma-separated, in "
        "the order of MODES (a reduced long run, when two hours are not to be had)",
    )
    parser.add_argument("--keep-infra", action="store_true", help="leave Kafka and Postgres up")
    parser.add_argument("--keep-data", action="store_true", help="keep the run's database")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    soak = args.mode == "soak"
    rate = args.rate or (200.0 if soak else 15.0)
    users = args.users or max(60, math.ceil(rate * 4))
    quick = args.mode == "short"
    window = args.window or (30.0 if args.mode == "long" else 6.0 if quick else 8.0)
    partition = args.partition or (10.0 if quick else 30.0)
    steady = args.steady or (10.0 if quick else 20.0)
    options = Options(
        state_dir=args.state_dir,
        seed=args.seed,
        rate=rate,
        users=users,
        keep_infra=args.keep_infra,
        keep_data=args.keep_data,
        quick=quick,
        warmup_s=10.0 if quick else 20.0,
    )
    rng = random.Random(args.seed)
    scenarios = catalogue(window, partition)
    if soak:
        # Faults at a low rate: a trial of any scenario about every two minutes.
        options.soak_s = args.minutes * 60
        options.soak_every_s = 120.0
        # Short enough that the soak shows event ids being forgotten, not only piling up.
        options.settings["INGEST_PROCESSED_EVENTS_RETENTION"] = "10m"
        plan: list[tuple[Scenario, int]] = []
    else:
        plan = plan_for(args.counts or MODES[args.mode], scenarios, rng)
    what = f"{args.minutes:.0f} min soak" if soak else f"{len(plan)} trials"
    if args.counts and not soak:
        what += f" (reduced: --counts {','.join(map(str, args.counts))})"
    print(f"chaos {args.mode}: {what} at {rate:.0f} events/s", flush=True)
    try:
        outcome = asyncio.run(stoppable(execute(options, plan, steady, scenarios)))
    except Stopped:
        print("chaos: stopped (SIGTERM); what it started is stopped", flush=True)
        return 143
    print("\n".join(outcome.lines))
    print(outcome.result, flush=True)
    return 0 if outcome.lost == 0 and outcome.doubled == 0 and outcome.sound else 1


if __name__ == "__main__":
    sys.exit(main())
