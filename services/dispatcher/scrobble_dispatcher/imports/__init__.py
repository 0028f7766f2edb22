"""History import and two-way sync (CONTRACTS section 4, ``POST /import/{service}``).

- ``scrobble_shared.trackers.history``: the pure shapes: an imported item, a page, a
  reader's protocol, how an answer of a history read is judged; each tracker's pure page
  reader (which request comes next, what a page says, where the next one starts) is in its
  folder;
- ``sync``: what an imported item means for the user's other connections (pure);
- ``store``: the Postgres statements (claiming jobs, saving a page with its cursor);
- ``runner``: one job, page after page, paced on the dispatcher's shared limiter;
- ``worker``: the ``<prefix>imports`` subscriber, the sweeper that takes over jobs whose
  worker died, and the wiring the dispatcher calls (``python -m scrobble_dispatcher.imports``
  runs the same worker alone).
"""
