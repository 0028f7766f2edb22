"""Typed settings of every process: a YAML file shaped like the original ``scrobble:`` keys,
``${VAR}`` expansion inside it, environment variables over it (CONTRACTS section 5).

Precedence, highest first: keyword arguments, environment, the YAML file named by
``SCROBBLE_CONFIG``, defaults. Field names are the environment variable names in lower
case; the YAML keys map onto them as follows::

    scrobble:
      enabled: true                 -> SCROBBLE_ENABLED
      max_retries: 3                -> SCROBBLE_MAX_RETRIES
      retry_backoff: 5m             -> SCROBBLE_RETRY_BACKOFF
      database_url: ...             -> DATABASE_URL  (any section-5 variable, lower case)
      services:
        trakt:
          client_id: ${TRAKT_CLIENT_ID}  -> TRAKT_CLIENT_ID
          enabled: false                 -> TRAKT_ENABLED

A bad value stops the process with a :class:`SettingsError` naming the setting; an unknown
YAML key is an error too, because a typo silently ignored is a setting silently lost.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final
from urllib.parse import urlsplit

import yaml
from pydantic import (
    BeforeValidator,
    Field,
    SecretStr,
    ValidationError,
    create_model,
    field_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from scrobble_shared.service_names import ServiceName
from scrobble_shared.trackers.http import AppCredentials
from scrobble_shared.trackers.registry import SERVICES, TRACKERS, tracker
from scrobble_shared.trackers.tracker import TrackerConfig, TrackerSettings

log = logging.getLogger(__name__)

DEFAULT_METRICS_PORTS: Final[dict[str, int]] = {"ingest": 9101, "dispatcher": 9102}


class SettingsError(Exception):
    """A setting is missing or has a bad value; the message names the setting."""


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_DURATION_UNITS: Final[dict[str, float]] = {
    "ms": 0.001,
    "s": 1,
    "m": 60,
    "h": 3600,
    "d": 86400,
}


def parse_duration(value: object) -> object:
    """Turn ``"5m"``, ``"1h30m"``, ``"250ms"`` or a number of seconds into a timedelta.

    Anything else is handed on unchanged so pydantic reports it as a bad value.
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return timedelta(seconds=value)
    if not isinstance(value, str):
        return value
    text = value.strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return timedelta(seconds=float(text))
    if not text or _DURATION_PART.sub("", text):
        raise ValueError("expected a duration such as 30s, 5m, 1h30m or 250ms")
    seconds = sum(
        float(number) * _DURATION_UNITS[unit] for number, unit in _DURATION_PART.findall(text)
    )
    return timedelta(seconds=seconds)


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]

_SIZE: Final = re.compile(r"(\d+)\s*(b|k|kb|kib|m|mb|mib)?")
_SIZE_UNITS: Final[dict[str, int]] = {
    "b": 1,
    "k": 1024,
    "kb": 1000,
    "kib": 1024,
    "m": 1024 * 1024,
    "mb": 1000 * 1000,
    "mib": 1024 * 1024,
}


def parse_size(value: object) -> object:
    """Turn ``"1MiB"``, ``"512KiB"``, ``"2MB"`` or a number of bytes into bytes; anything
    else is handed on unchanged so pydantic reports it as a bad value."""
    if not isinstance(value, str):
        return value
    match = _SIZE.fullmatch(value.strip().lower())
    if match is None:
        raise ValueError("expected a size such as 1MiB, 512KiB or a number of bytes")
    return int(match[1]) * _SIZE_UNITS[match[2] or "b"]


ByteSize = Annotated[int, BeforeValidator(parse_size)]
Port = Annotated[int, Field(ge=1, le=65535)]

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand_variables(text: str, environ: Mapping[str, str]) -> str:
    """Replace ``${VAR}`` and ``${VAR:-default}``; an unset variable becomes empty, so a
    credential left out of the environment disables its service instead of crashing."""

    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        found = environ.get(name, "")
        return found if found else (default or "")

    return _VAR.sub(replace, text)


def _flatten_yaml(document: Any, field_names: set[str], source: str) -> dict[str, Any]:
    """Map the ``scrobble:`` tree onto flat field names (see the module docstring)."""
    if document is None:
        return {}
    if not isinstance(document, dict) or set(document) - {"scrobble"}:
        raise SettingsError(f"{source}: expected a single top-level 'scrobble:' mapping")
    tree = document.get("scrobble") or {}
    if not isinstance(tree, dict):
        raise SettingsError(f"{source}: 'scrobble:' must be a mapping")
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if key == "services":
            flat.update(_flatten_services(value, field_names, source))
        elif f"scrobble_{key}" in field_names:
            flat[f"scrobble_{key}"] = value
        elif key in field_names:
            flat[key] = value
        else:
            raise SettingsError(f"{source}: unknown setting scrobble.{key}")
    return flat


def _flatten_services(tree: Any, field_names: set[str], source: str) -> dict[str, Any]:
    if not isinstance(tree, dict):
        raise SettingsError(f"{source}: scrobble.services must be a mapping")
    flat: dict[str, Any] = {}
    for service, options in tree.items():
        if service not in SERVICES:
            raise SettingsError(f"{source}: unknown service scrobble.services.{service}")
        for key, value in (options or {}).items():
            name = f"{tracker(service).settings.prefix.lower()}_{key}"
            if name not in field_names:
                raise SettingsError(f"{source}: unknown setting scrobble.services.{service}.{key}")
            flat[name] = value
    return flat


class _YamlSource(PydanticBaseSettingsSource):
    """Reads the file named by ``SCROBBLE_CONFIG`` with ``${VAR}`` expansion."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        super().__init__(settings_cls)
        self._environ = environ

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        raise NotImplementedError  # __call__ below does the whole file at once

    def __call__(self) -> dict[str, Any]:
        path = self._environ.get("SCROBBLE_CONFIG")
        if not path:
            return {}
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise SettingsError(f"SCROBBLE_CONFIG={path}: cannot read: {exc.strerror}") from exc
        try:
            document = yaml.safe_load(expand_variables(text, self._environ))
        except yaml.YAMLError as exc:
            raise SettingsError(f"SCROBBLE_CONFIG={path}: not valid YAML: {exc}") from exc
        flat = _flatten_yaml(document, set(self.settings_cls.model_fields), path)
        # Empty strings come from unset ${VAR}s: treat them as "not given".
        return {key: value for key, value in flat.items() if value not in ("", None)}


def http_url(value: str | None) -> str | None:
    """``value`` when it is an http(s) URL with a host (or None); ValueError otherwise."""
    if value is None:
        return value
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("expected an http:// or https:// URL")
    return value


class _CoreSettings(BaseSettings):
    """The settings every tracker shares; :data:`Settings` adds each tracker's own (its
    ``TrackerSettings``). Build them with :func:`load_settings`."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", frozen=True)

    database_url: str = "postgresql://localhost/scrobble"
    kafka_bootstrap_servers: str = "localhost:9092"
    token_encryption_key: SecretStr | None = None
    gateway_jwt_secret: SecretStr | None = None
    gateway_jwks_url: str | None = None
    gateway_host: str = "127.0.0.1"
    gateway_port: Port = 8080
    gateway_public_url: str = "http://localhost:8080"
    # Where the gateway may send a browser after connecting an account: comma-separated
    # origins (https://app.example) or URL prefixes (https://app.example/settings/).
    gateway_return_url_allowlist: str = ""
    # The iss and aud bearer tokens must carry. None: not set (refused at start where
    # required); "" (set to an empty value): explicitly none, with a warning at start.
    gateway_jwt_issuer: str | None = None
    gateway_jwt_audience: str | None = None
    # Clock skew allowed for exp, nbf and iat.
    gateway_jwt_leeway: Duration = timedelta(seconds=30)
    # How long keys from GATEWAY_JWKS_URL are trusted, and the least time between two
    # fetches an unknown kid may cause.
    gateway_jwks_cache_ttl: Duration = timedelta(minutes=5)
    gateway_jwks_refetch_interval: Duration = timedelta(seconds=30)
    # Sessions of the page for people: ended after this long without a request, and this
    # long after sign-in whatever happens.
    gateway_session_idle_timeout: Duration = timedelta(hours=1)
    gateway_session_max_age: Duration = timedelta(hours=12)
    # Per-user limits of the API (requests a minute) and of what a user may have open.
    gateway_quota_reads_per_minute: int = Field(default=600, ge=1, le=1_000_000)
    gateway_quota_writes_per_minute: int = Field(default=60, ge=1, le=1_000_000)
    gateway_max_open_oauth_states: int = Field(default=10, ge=1, le=10_000)
    gateway_max_import_jobs_per_day: int = Field(default=20, ge=1, le=10_000)
    metrics_port: Port | None = None

    # The intake (CONTRACTS section 8): where it listens, the URL media servers are given,
    # the largest body it reads, and how long a publish may take before it answers 503.
    intake_host: str = "127.0.0.1"
    intake_port: Port = 8081
    intake_public_url: str = "http://localhost:8081"
    intake_max_body: Annotated[ByteSize, Field(ge=1024, le=64 * 1024 * 1024)] = 1024 * 1024
    intake_publish_timeout: Duration = timedelta(seconds=5)

    scrobble_enabled: bool = True
    scrobble_max_retries: int = Field(default=3, ge=0, le=100)
    scrobble_retry_backoff: Duration = timedelta(minutes=5)
    scrobble_queue_process_interval: Duration = timedelta(minutes=5)
    scrobble_silence_timeout: Duration = timedelta(minutes=30)
    playback_topic: str = Field(default="playback.events", min_length=1, max_length=240)
    # Work topics are <prefix><service>: scrobble.trakt, scrobble.lastfm, ...
    scrobble_topic_prefix: str = Field(default="scrobble.", min_length=1, max_length=200)
    ingest_group_id: str = Field(default="scrobble-ingest", min_length=1)
    ingest_batch_size: int = Field(default=2000, ge=1, le=50_000)
    # How long an event id is remembered, so that the same event again has no effect: keep
    # it longer than anything is redelivered or replayed (the playback topic's retention).
    ingest_processed_events_retention: Duration = timedelta(days=30)
    # One consumer group per service topic: <group id>.<service>.
    dispatcher_group_id: str = Field(default="scrobble-dispatcher", min_length=1)
    # Calls one dispatcher process has out at once per service, each on a client of its
    # own (scrobble_dispatcher/transport.py: ClientSet says why not one pool).
    dispatcher_calls_in_flight: int = Field(default=16, ge=1, le=1000)

    @field_validator("database_url")
    @classmethod
    def _postgres_dsn(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("postgresql", "postgres"):
            raise ValueError("expected postgresql://[user[:password]@]host[:port]/database")
        return value

    @field_validator("kafka_bootstrap_servers")
    @classmethod
    def _bootstrap_list(cls, value: str) -> str:
        for server in value.split(","):
            if not re.fullmatch(r"[^\s:,]+:\d{1,5}", server.strip()):
                raise ValueError("expected a comma-separated list of host:port")
        return value

    @field_validator(
        "gateway_public_url",
        "gateway_jwks_url",
        "intake_public_url",
    )
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        return http_url(value)

    @field_validator("gateway_return_url_allowlist")
    @classmethod
    def _return_url_allowlist(cls, value: str) -> str:
        for entry in (e.strip() for e in value.split(",")):
            parts = urlsplit(entry)
            if entry and (parts.scheme not in ("http", "https") or not parts.netloc):
                raise ValueError("expected comma-separated http:// or https:// origins or URLs")
        return value

    @field_validator("token_encryption_key")
    @classmethod
    def _fernet_keys(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            # Imported here so settings stay importable without the crypto stack loaded.
            from scrobble_shared.crypto import parse_keys

            parse_keys(value.get_secret_value())
        return value

    @property
    def max_retries(self) -> int:
        return self.scrobble_max_retries

    @property
    def retry_backoff(self) -> timedelta:
        return self.scrobble_retry_backoff

    @property
    def playback_dlq_topic(self) -> str:
        return f"{self.playback_topic}.dlq"

    def service_topic(self, service: ServiceName) -> str:
        return f"{self.scrobble_topic_prefix}{service}"

    def metrics_port_for(self, process: str) -> int:
        """``METRICS_PORT`` when set, else the contract's default for the process."""
        return self.metrics_port or DEFAULT_METRICS_PORTS[process]

    def tracker(self, name: ServiceName) -> TrackerConfig:
        """What the tracker's code needs of these settings (``TrackerSettings`` names
        them); UnknownTracker for a name no tracker has."""
        spec = tracker(name).settings
        values = self.model_dump()

        def value(setting: str) -> str | None:
            found = values.get(setting.lower())
            if isinstance(found, SecretStr):
                found = found.get_secret_value()
            return found if isinstance(found, str) and found else None

        app = AppCredentials("")
        if spec.app is not None:
            app = AppCredentials(value(spec.app[0]) or "", value(spec.app[1]) or "")
        prefix = spec.prefix.lower()
        return TrackerConfig(
            name=name,
            api_url=spec.full_api_url(values[f"{prefix}_api_url"]),
            auth_url=values.get(f"{prefix}_auth_url"),
            app=app,
            extra={n: v for n in spec.extra if (v := value(n)) is not None},
        )

    def tracker_enabled(self, name: ServiceName) -> bool:
        """``<PREFIX>_ENABLED``: whether the operator switched the tracker on."""
        return bool(getattr(self, f"{tracker(name).settings.prefix.lower()}_enabled"))

    def missing_credentials(self, name: ServiceName) -> list[str]:
        """The settings the tracker needs that are not set."""
        values = self.model_dump()
        return [n for n in tracker(name).settings.required if not values.get(n.lower())]

    def enabled_services(self) -> list[ServiceName]:
        """The trackers this install can talk to; one log line for each one that is off."""
        enabled: list[ServiceName] = []
        for name in SERVICES:
            missing = self.missing_credentials(name)
            prefix = tracker(name).settings.prefix
            if not self.scrobble_enabled:
                log.info("%s disabled: scrobbling is off (SCROBBLE_ENABLED=false)", name)
            elif not self.tracker_enabled(name):
                log.info("%s disabled by configuration (%s_ENABLED=false)", name, prefix)
            elif missing:
                log.info("%s disabled: %s not set", name, " and ".join(missing))
            else:
                enabled.append(name)
        return enabled

    def require(self, *names: str) -> None:
        """Refuse to start a process that needs a setting the operator did not give."""
        missing = [n.upper() for n in names if getattr(self, n.lower()) in (None, "")]
        if missing:
            raise SettingsError(f"{', '.join(missing)} must be set for this process")


def _tracker_url(cls: type[BaseSettings], value: str | None) -> str | None:
    return http_url(value)


def _tracker_fields(spec: TrackerSettings) -> dict[str, Any]:
    """The fields of one tracker's settings, named like every field (lower case)."""
    prefix = spec.prefix.lower()
    fields: dict[str, Any] = {
        f"{prefix}_enabled": (bool, True),
        f"{prefix}_api_url": (str, spec.api_url),
    }
    if spec.auth_url is not None:
        fields[f"{prefix}_auth_url"] = (str, spec.auth_url)
    if spec.app is not None:
        fields[spec.app[0].lower()] = (str | None, None)
        fields[spec.app[1].lower()] = (SecretStr | None, None)
    for name in spec.extra:
        fields[name.lower()] = (str | None, None)
    for name in spec.secret_extra:
        fields[name.lower()] = (SecretStr | None, None)
    return fields


def _url_fields() -> list[str]:
    return [
        f"{t.settings.prefix.lower()}_{kind}_url"
        for t in TRACKERS
        for kind in ("api", "auth")
        if kind == "api" or t.settings.auth_url is not None
    ]


if TYPE_CHECKING:
    Settings = _CoreSettings
else:
    # One process's settings: the shared ones and every tracker's (its folder declares
    # them), so a new tracker adds settings without a line here.
    Settings = create_model(
        "Settings",
        __base__=_CoreSettings,
        __module__=__name__,
        __validators__={
            "_tracker_urls": field_validator(*_url_fields())(_tracker_url),
        },
        **{name: f for t in TRACKERS for name, f in _tracker_fields(t.settings).items()},
    )

_SECRET_FIELDS: Final = frozenset(
    name for name, info in Settings.model_fields.items() if "SecretStr" in repr(info.annotation)
)


def redact_dsn(dsn: str) -> str:
    """The DSN with its password replaced, fit for logs and error messages."""
    parts = urlsplit(dsn)
    if parts.password is None:
        return dsn
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def _describe(error: Mapping[str, Any]) -> str:
    field = str(error["loc"][0]) if error["loc"] else "settings"
    where = field.upper()
    message = str(error["msg"])
    if field in _SECRET_FIELDS:
        return f"{where}: {message}"
    if field == "database_url" and isinstance(error["input"], str):
        return f"{where}: {message} (got {redact_dsn(error['input'])!r})"
    return f"{where}: {message} (got {error['input']!r})"


def load_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Build the settings or raise :class:`SettingsError` naming every bad setting."""
    env = dict(os.environ if environ is None else environ)

    class _Loaded(Settings):
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return (init_settings, _EnvSource(settings_cls, env), _YamlSource(settings_cls, env))

    try:
        loaded = _Loaded(**overrides)
    except ValidationError as exc:
        problems = "; ".join(_describe(e) for e in exc.errors())
        raise SettingsError(f"invalid settings: {problems}") from None
    return loaded


# Settings where an empty value is a value ("explicitly none"), not "unset".
EMPTY_IS_A_VALUE: Final = frozenset({"gateway_jwt_issuer", "gateway_jwt_audience"})


class _EnvSource(PydanticBaseSettingsSource):
    """Environment variables named after the fields; empty values count as unset, except
    for the settings of :data:`EMPTY_IS_A_VALUE`."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        super().__init__(settings_cls)
        self._environ = {k.lower(): v for k, v in environ.items()}

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        raise NotImplementedError  # __call__ below reads all fields at once

    def __call__(self) -> dict[str, Any]:
        return {
            name: self._environ[name]
            for name in self.settings_cls.model_fields
            if self._environ.get(name, "") != ""
            or (name in EMPTY_IS_A_VALUE and name in self._environ)
        }
