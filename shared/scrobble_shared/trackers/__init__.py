"""The trackers: everything the house knows about each service it delivers to, one folder a
tracker. Pure: no network, clock, database or configuration loader here (import-linter
holds that); the dispatcher, the gateway and the CLI do the I/O with what these build.

- ``http``: requests, answers and outcomes (h11 style: build a request, classify an answer),
  readable reasons, credentials, the client protocol;
- ``history``: the shapes of a history import (items, pages, the reader protocol);
- ``ids``: the shapes of external-id resolution (plans, lookups, answers);
- ``pace``: rate limits as keys;
- ``refresh``: the pure part of refreshing access tokens;
- ``<tracker>/``: one folder per tracker: its client (requests and error table), history
  reader, id resolver where it needs one, and what else only it knows.
"""
