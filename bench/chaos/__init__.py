"""The chaos harness (issue 19): the whole system under load and under faults, judged at
the fakes' own records.

    .venv/bin/python -m bench.chaos --mode short    # CI: a few trials of each fault
    .venv/bin/python -m bench.chaos --mode long     # make chaos: 50 kills of each process...
    .venv/bin/python -m bench.chaos --mode soak     # 30 min at 200 events/s, faults now and then

It starts a Kafka broker and a Postgres server of its own (``infra.py``: deploy/local/infra.sh
with a state directory and ports of its own, never the shared 9092 and 5432) behind a TCP
proxy that can cut, delay, stall and partition (``proxy.py``); the sandbox's fakes with
their published rate limits and a token per user; ingest, two dispatchers, the import
worker, the intake and the gateway as processes (``stack.py``). Load (``load.py``,
``gateway_load.py``, ``imports_load.py``): plays of tracks, movies, episodes and anime
through the intake (duplicates, late and swapped events, a clock off by ten minutes,
items a service refuses), people connecting services through the OAuth flows and queueing
scrobbles by hand, history imports, and poison records straight onto the playback topic.
Faults (``scenarios.py``) run as trials; afterwards the system is left to come to rest and
the fakes' records are counted against what every play means (``plays.py``,
``ledger.py``, ``observe.py``): lost, doubled (only where the service keeps duplicates),
dead-lettered with a reason, and Postgres agreeing with the fakes. ``soak.py`` samples
memory, descriptors, connections and table sizes. ``report.py`` prints the table and the
last line ``RESULT trials=.. lost=.. doubled=.. max_recovery_s=.. rss_slope_mb_per_h=..``.
"""
