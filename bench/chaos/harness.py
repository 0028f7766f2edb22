"""One run of the harness: stand the system up on private infrastructure, load it, inject
the planned faults one trial at a time, let it come to rest, count, report, tear down."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
from aiokafka import AIOKafkaProducer

from bench.chaos import observe, world
from bench.chaos.gateway_load import BrowserDriver, browser_users
from bench.chaos.imports_load import (
    FIRST_ROUND,
    QUICK_FIRST_ROUND,
    ImportDriver,
    import_users,
)
from bench.chaos.infra import InfraPorts, PrivateInfra
from bench.chaos.ledger import (
    Figures,
    db_disagreements,
    judge,
    judge_imports,
    judge_kafka_poison,
)
from bench.chaos.load import Intake, KafkaPoison, LoadDriver
from bench.chaos.plays import Play, PlayMaker, Profile, User, make_users
from bench.chaos.report import result_line, table
from bench.chaos.scenarios import Scenario
from bench.chaos.soak import Sampler
from bench.chaos.stack import Stack
from bench.ingest import create_topics, delete_topics
from scrobble_shared.crypto import TokenCipher
from tests.support.databases import create_database, drop_database

log = logging.getLogger("chaos")
STEADY = "steady (no fault)"


@dataclass
class Options:
    state_dir: Path
    seed: int = 19
    rate: float = 15.0  # playback events a second
    users: int = 60
    browser_users: int = 3
    import_users: int = 2
    warmup_s: float = 20.0
    recovery_deadline_s: float = 300.0
    rest_deadline_s: float = 900.0
    keep_infra: bool = False
    keep_data: bool = False
    retry_backoff: str = "5s"
    max_retries: int = 5
    sample_every_s: float = 30.0
    quick: bool = False  # the CI run: shorter waits inside trials, a smaller first import
    soak_s: float = 0.0  # a soak: this long, a random trial about every soak_every_s
    soak_every_s: float = 120.0
    settings: dict[str, str] = field(default_factory=dict)  # more for every service


@dataclass
class Run:
    options: Options
    tag: str
    rng: random.Random
    infra: PrivateInfra
    stack: Stack
    sandbox: world.Sandbox | None = None
    users: list[User] = field(default_factory=list)
    canary: User | None = None
    driver: LoadDriver | None = None
    browser: BrowserDriver | None = None
    imports: ImportDriver | None = None
    poison: KafkaPoison | None = None
    producer: AIOKafkaProducer | None = None
    sampler: Sampler | None = None
    figures: dict[str, Figures] = field(default_factory=dict)
    names: dict[uuid.UUID, str] = field(default_factory=dict)  # user id -> name at the fakes
    mismatches: int = 0  # items Postgres and the fakes disagree on
    started: float = field(default_factory=time.monotonic)
    notes: list[str] = field(default_factory=list)

    def say(self, text: str) -> None:
        elapsed = time.monotonic() - self.started
        print(f"[{elapsed:7.1f}s] {text}", flush=True)

    @property
    def topics(self) -> world.Topics:
        return world.Topics(f"{self.tag}.")

    # --- setup ---------------------------------------------------------------------------

    async def setup(self) -> None:
        o = self.options
        self.say(f"private Kafka and Postgres in {self.infra.state_dir} ({self.infra.ports})")
        took = await self.infra.up()
        self.say(f"infrastructure up in {took:.0f} s")
        proxy = self.stack.proxy_service()
        self.stack.services["proxy"] = proxy
        await proxy.start(30)
        await self.forget_earlier_runs()
        await create_database(self.infra.admin_dsn, self.stack.database)
        await durable(self.infra.admin_dsn, self.stack.database)
        await self.stack.migrate()
        await create_topics(self.stack.bootstrap, self.topics.all())
        sandbox_service = self.stack.sandbox_service()
        self.stack.services["sandbox"] = sandbox_service
        await sandbox_service.start(60)
        self.sandbox = world.Sandbox(self.stack.sandbox_url)
        await self.sandbox.auto_approve(True)
        self.users = make_users(o.users, self.tag, self.rng)
        self.canary = User(
            index=o.users,
            id=uuid.uuid5(uuid.NAMESPACE_URL, f"{self.tag}:canary"),
            profile=Profile.LISTENER,
            services=("listenbrainz",),
            name=f"{self.tag}-canary",
        )
        importers = import_users(o.import_users, self.tag, o.users + 1)
        browsers = browser_users(o.browser_users, self.tag, o.users + 1 + o.import_users)
        everyone = [*self.users, self.canary]
        self.names = {u.id: u.name for u in [*everyone, *importers, *browsers]}
        await world.seed_users(self.sandbox, [*everyone, *importers])
        cipher = TokenCipher(self.stack.token_key)
        await world.connect_users(self.stack.direct_dsn, cipher, everyone)
        await world.connect_users(
            self.stack.direct_dsn, cipher, importers, syncing=frozenset({"simkl"})
        )
        sources = await world.make_sources(self.stack.direct_dsn, everyone)
        self.stack.service_settings(
            await self.sandbox.env(),
            {
                "SCROBBLE_RETRY_BACKOFF": o.retry_backoff,
                "SCROBBLE_MAX_RETRIES": str(o.max_retries),
                # The harness's few users stand for many: the per-user API quotas of the
                # gateway would only refuse the load.
                "GATEWAY_QUOTA_READS_PER_MINUTE": "1000000",
                "GATEWAY_QUOTA_WRITES_PER_MINUTE": "1000000",
                "GATEWAY_MAX_IMPORT_JOBS_PER_DAY": "10000",
                **o.settings,
            },
        )
        self.stack.build()
        self.say("starting ingest, two dispatchers, the import worker, the intake, the gateway")
        await self.stack.start_all()
        intake = Intake(self.stack.intake_url, sources, deadline_s=600)
        maker = PlayMaker(self.tag, self.rng)
        self.driver = LoadDriver(maker, self.users, intake, o.rate, self.rng)
        self.browser = BrowserDriver(
            self.stack.gateway_url, self.stack.jwt_secret, browsers, self.tag, self.rng
        )
        self.imports = ImportDriver(
            self.stack.gateway_url,
            self.stack.jwt_secret,
            self.sandbox,
            importers,
            self.tag,
            self.stack.direct_dsn,
            QUICK_FIRST_ROUND if o.quick else FIRST_ROUND,
        )
        self.producer = AIOKafkaProducer(
            bootstrap_servers=self.stack.bootstrap, acks="all", enable_idempotence=True
        )
        await self.producer.start()
        self.poison = KafkaPoison(self.producer, self.topics.playback, self.tag)
        self.sampler = Sampler(self.stack)
        self.say(
            f"{len(self.users)} users ({_profiles(self.users)}), {len(browsers)} connecting "
            f"through the gateway, {len(importers)} importing; load {o.rate:.0f} events/s"
        )

    async def forget_earlier_runs(self) -> None:
        """Drop the databases and topics earlier runs left on the private server and
        broker (``--keep-data``, or a run that died): kept, they slow every broker restart
        after a kill -9 (each partition is recovered first), past its timeout in the end."""
        topics = await world.leftover_topics(self.stack.bootstrap, self.topics.prefix)
        if topics:
            await delete_topics(self.stack.bootstrap, topics)
        databases = await world.leftover_databases(self.infra.admin_dsn, self.stack.database)
        for name in databases:
            await drop_database(self.infra.admin_dsn, name)
        if topics or databases:
            self.say(f"dropped {len(databases)} database(s), {len(topics)} topic(s) of old runs")

    async def teardown(self) -> None:
        with contextlib.suppress(Exception):
            if self.driver is not None:
                await self.driver.intake.aclose()
        if self.producer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.producer.stop(), 30)
        await self.stack.stop_all()
        if not self.options.keep_data:
            # Before the proxy stops: the broker advertises the proxy's port, so without it
            # no admin call gets past the bootstrap (every run's topics used to stay).
            with contextlib.suppress(Exception):
                await delete_topics(self.stack.bootstrap, self.topics.all())
            with contextlib.suppress(Exception):
                await drop_database(self.infra.admin_dsn, self.stack.database)
        for name in ("sandbox", "proxy"):
            service = self.stack.services.get(name)
            if service is not None:
                await service.stop()
        if self.sandbox is not None:
            await self.sandbox.aclose()
        if not self.options.keep_infra:
            await self.infra.down()

    # --- scenario labels -----------------------------------------------------------------

    def label(self, scenario: str) -> None:
        """Plays made from now on belong to ``scenario``."""
        for driver in (self.driver, self.browser, self.imports):
            if driver is not None:
                driver.scenario = scenario

    # --- the canary ----------------------------------------------------------------------

    async def canary_delivered(self, deadline_s: float) -> float | None:
        """Send a listen of the canary user now; seconds until Postgres records it sent
        (which happens only after the fake answered), None past the deadline."""
        assert self.driver is not None
        assert self.canary is not None
        began = time.monotonic()
        play = self.driver.start_play(self.canary, plain=True)
        key = uuid.UUID(play.content["id"])
        while time.monotonic() - began < deadline_s:
            with contextlib.suppress(OSError, asyncpg.PostgresError):
                if await _sent(self.stack.direct_dsn, key):
                    return time.monotonic() - began
            await asyncio.sleep(0.25)
        return None

    # --- trials --------------------------------------------------------------------------

    async def steady(self, seconds: float) -> None:
        """Load without faults (the baseline row)."""
        self.label(STEADY)
        row = self.figures.setdefault(STEADY, Figures(STEADY))
        if self.poison is not None:
            await self.poison.send(STEADY)
        await asyncio.sleep(seconds)
        took = await self.canary_delivered(self.options.recovery_deadline_s)
        row.trials += 1
        if took is not None:
            row.recovery_s.append(took)
        self.say(f"{STEADY}: canary delivered in {_seconds(took)}")

    async def trial(self, scenario: Scenario, number: int) -> None:
        self.label(scenario.name)
        row = self.figures.setdefault(scenario.name, Figures(scenario.name))
        row.trials += 1
        if self.poison is not None and number % 3 == 0:
            await self.poison.send(scenario.name)
        began = time.monotonic()
        note = await scenario.inject(self, self.rng, number)
        took = await self.canary_delivered(self.options.recovery_deadline_s)
        if took is None:
            row.note(f"trial {number}: no canary within {self.options.recovery_deadline_s:.0f} s")
        else:
            row.recovery_s.append(took)
        self.say(
            f"{scenario.name} #{number}: {note}; recovered in {_seconds(took)} "
            f"(trial {time.monotonic() - began:.0f} s)"
        )

    async def trials(self, plan: Sequence[tuple[Scenario, int]]) -> None:
        for scenario, number in plan:
            await self.trial(scenario, number)
            if self.sampler is not None:
                await self.sampler.maybe_sample(self.options.sample_every_s)
        self.label(STEADY)

    async def soak(self, scenarios: dict[str, Scenario]) -> None:
        """Load for ``soak_s`` with a trial of a random scenario every so often, sampling
        the processes and tables all along."""
        assert self.sampler is not None
        until = time.monotonic() + self.options.soak_s
        names = sorted(scenarios)
        numbers: dict[str, int] = {}
        next_fault = time.monotonic() + self.rng.uniform(0.5, 1.5) * self.options.soak_every_s
        while time.monotonic() < until:
            await self.sampler.maybe_sample(self.options.sample_every_s)
            if time.monotonic() >= next_fault:
                scenario = scenarios[self.rng.choice(names)]
                numbers[scenario.name] = numbers.get(scenario.name, -1) + 1
                await self.trial(scenario, numbers[scenario.name])
                self.label(STEADY)
                next_fault = time.monotonic() + self.rng.uniform(0.5, 1.5) * (
                    self.options.soak_every_s
                )
            await asyncio.sleep(1.0)

    # --- rest and the count --------------------------------------------------------------

    async def come_to_rest(self) -> bool:
        assert self.driver is not None
        topics = self.topics
        groups = [f"{self.tag}.ingest"] + [f"{self.tag}.dispatcher.{s}" for s in world.SERVICES]
        names = [topics.playback] + [topics.service(s) for s in world.SERVICES]

        async def check() -> observe.Rest:
            assert self.driver is not None
            return await observe.rest_state(
                self.stack.direct_dsn, self.stack.bootstrap, groups, names, self.driver.in_flight()
            )

        self.say("waiting for the system to come to rest ...")
        reached, took, state = await observe.wait_for_rest(check, self.options.rest_deadline_s)
        self.say(f"{'at rest' if reached else 'NOT at rest'} after {took:.0f} s: {state}")
        return reached

    async def count(self) -> list[Figures]:
        assert self.sandbox is not None
        assert self.driver is not None
        found = await observe.read_fakes(self.sandbox)
        db = await observe.read_db(self.stack.direct_dsn, self.names)
        db.dead_letters = await observe.read_dead_letters(self.stack.bootstrap, self.topics)
        plays: list[Play] = [*self.driver.plays]
        if self.browser is not None:
            plays += self.browser.plays
        if self.imports is not None:
            plays += self.imports.plays
        judge(plays, found, db, self.figures)
        if self.poison is not None:
            letters = await observe.read_playback_dead_letters(self.stack.bootstrap, self.topics)
            judge_kafka_poison(self.poison.sent, letters, self.figures)
        rows = list(self.figures.values())
        if self.imports is not None:
            imported = await observe.imported_counts(self.stack.direct_dsn)
            rows.append(judge_imports(self.imports.seeded, imported, self.imports.failures))
        problems = db_disagreements(plays, found, db)
        self.mismatches = len(problems)
        if problems:
            self.notes.append(f"Postgres and the fakes disagree on {len(problems)} item(s):")
            self.notes += [f"  {p}" for p in problems[:10]]
        if db.waiting:
            self.notes.append(f"{len(db.waiting)} piece(s) of work still waiting:")
            self.notes += [f"  {w}" for w in db.waiting[:10]]
        unexpected = [f for f in db.failed if f["kind"] != "now_playing"]
        if unexpected:
            self.notes.append(f"{len(unexpected)} piece(s) of work failed:")
            self.notes += [f"  {f}" for f in unexpected[:10]]
        refusals = self.driver.intake.refusals
        if refusals:
            self.notes.append(f"the intake refused {len(refusals)} event(s): {refusals[:3]}")
        if self.browser is not None:
            self.notes.append(
                f"gateway: {self.browser.flows} connect flows finished, "
                f"{self.browser.flows_failed} started over, "
                f"{self.browser.queue_resends} queue requests sent again"
            )
        if self.imports is not None:
            self.notes.append(
                f"imports: {self.imports.rounds} rounds, {len(self.imports.jobs)} jobs, "
                f"{len(self.imports.failures)} failed"
            )
        self.notes.append(
            f"load: {self.driver.events_sent} events taken by the intake, "
            f"{self.driver.intake.resends} sent again after a 503 or no answer"
        )
        return rows


async def durable(admin_dsn: str, database: str) -> None:
    """Commits that survive a crash of Postgres. The local server runs with
    ``synchronous_commit = off`` for fast tests: a COMMIT returns before its WAL is written,
    and a kill -9 then loses the last ones, which no production server allows (the harness
    found this: a batch ingest had committed, offsets and all, was gone after the crash).
    On: a COMMIT returns once its WAL is written; with ``fsync = off`` it is not forced to
    disk, so only a crash of the machine could lose it, never one of Postgres."""
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'ALTER DATABASE "{database}" SET synchronous_commit = on')
    finally:
        await conn.close()


async def _sent(dsn: str, content_id: uuid.UUID) -> bool:
    conn = await asyncpg.connect(dsn)
    try:
        found = await conn.fetchval(
            "SELECT count(*) FROM scrobbles WHERE content_id = $1 AND kind = 'scrobble' "
            "AND status = 'sent'",
            content_id,
        )
    finally:
        await conn.close()
    return bool(found)


def _seconds(value: float | None) -> str:
    return "NEVER" if value is None else f"{value:.1f} s"


def _profiles(users: list[User]) -> str:
    counts: dict[str, int] = {}
    for user in users:
        for service in user.services:
            counts[service] = counts.get(service, 0) + 1
    return ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))


@dataclass
class Outcome:
    rows: list[Figures]
    result: str
    lines: list[str]
    # Came to rest, and Postgres agrees with the fakes.
    sound: bool

    @property
    def lost(self) -> int:
        return sum(r.lost for r in self.rows)

    @property
    def doubled(self) -> int:
        return sum(r.doubled for r in self.rows)


async def execute(
    options: Options,
    plan: Sequence[tuple[Scenario, int]],
    steady_s: float,
    scenarios: dict[str, Scenario],
) -> Outcome:
    """Set up, run the trials of ``plan`` under load, come to rest, count; always tear
    down."""
    tag = f"chaos{uuid.uuid4().hex[:8]}"
    rng = random.Random(options.seed)
    infra_dir = options.state_dir / "infra"
    infra = PrivateInfra(infra_dir, InfraPorts.for_state_dir(infra_dir))
    run_dir = options.state_dir / "runs" / tag
    stack = Stack(infra=infra, run_dir=run_dir, database=tag, tag=tag)
    run = Run(options, tag, rng, infra, stack)
    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []
    try:
        await run.setup()
        assert run.driver is not None
        assert run.browser is not None
        assert run.imports is not None
        assert run.sampler is not None
        tasks = [
            asyncio.create_task(run.driver.run(stop), name="load"),
            asyncio.create_task(run.browser.run(stop), name="browsers"),
            asyncio.create_task(run.imports.run(stop), name="imports"),
        ]
        await run.sampler.sample()
        await asyncio.sleep(options.warmup_s)
        await run.steady(steady_s)
        if options.soak_s:
            await run.soak(scenarios)
        await run.trials(plan)
        stop.set()
        run.say("load stopped; sending what is in flight")
        await asyncio.gather(*tasks)
        await run.driver.drain(options.rest_deadline_s)
        reached = await run.come_to_rest()
        await run.sampler.sample()
        if not reached:
            run.notes.append("the system did not come to rest before the deadline")
        rows = await run.count()
        lines = table(rows)
        for row in rows:
            lines += [f"  {row.scenario}: {example}" for example in row.examples]
        lines += run.sampler.report()
        poison = sum(r.poison for r in rows)
        dead = sum(r.dead_lettered for r in rows)
        result = result_line(
            rows,
            run.sampler.rss_slope_mb_per_h(),
            dead_lettered=f"{dead}/{poison}",
            db_mismatch=run.mismatches,
        )
        lines += run.notes
        # The table outlives the terminal: a long run's output is often not watched.
        (run_dir / "report.txt").write_text("\n".join([*lines, result, ""]))
        return Outcome(rows, result, lines, reached and run.mismatches == 0)
    finally:
        stop.set()
        for task in tasks:
            if not task.done():
                task.cancel()
        await run.teardown()
        run.say(f"logs in {run_dir / 'logs'}")
