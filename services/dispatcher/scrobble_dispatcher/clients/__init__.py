"""One client per external service. Each is pure (h11 style): it turns work into an
:class:`~scrobble_dispatcher.clients.base.HttpRequest` and a response into an
:class:`~scrobble_dispatcher.clients.base.Outcome`; the HTTP call in between is shared."""
