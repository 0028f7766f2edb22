"""Settings: YAML shaped like the original scrobble: keys, ${VAR} expansion, env overrides,
errors that name the setting, services without credentials disabled with one log line."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from scrobble_shared.settings import SettingsError, load_settings, parse_duration
from scrobble_shared.trackers.registry import SERVICES, tracker

YAML = """
scrobble:
  enabled: true
  queue_process_interval: 5m
  max_retries: 4
  retry_backoff: 90s
  database_url: postgresql://app:${DB_PASSWORD}@db.internal:5433/scrobble
  services:
    trakt:
      enabled: true
      client_id: ${TRAKT_ID}
      client_secret: ${TRAKT_SECRET}
    lastfm:
      api_key: ${LASTFM_KEY:-fallback-key}
      api_secret: ${LASTFM_SECRET}
    simkl:
      enabled: false
      client_id: abc
      client_secret: def
"""


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "scrobble.yaml"
    path.write_text(YAML)
    return path


def test_yaml_keys_with_variable_expansion(config_file: Path) -> None:
    env = {
        "SCROBBLE_CONFIG": str(config_file),
        "DB_PASSWORD": "pw",
        "TRAKT_ID": "tid",
        "TRAKT_SECRET": "tsecret",
    }
    settings = load_settings(env)
    assert settings.max_retries == 4
    assert settings.retry_backoff == timedelta(seconds=90)
    assert settings.scrobble_queue_process_interval == timedelta(minutes=5)
    assert settings.database_url == "postgresql://app:pw@db.internal:5433/scrobble"
    trakt = settings.tracker("trakt")
    assert (trakt.app.client_id, trakt.app.client_secret) == ("tid", "tsecret")
    assert settings.tracker("lastfm").app.client_id == "fallback-key"
    assert settings.tracker_enabled("simkl") is False


def test_environment_overrides_yaml(config_file: Path) -> None:
    env = {
        "SCROBBLE_CONFIG": str(config_file),
        "SCROBBLE_MAX_RETRIES": "7",
        "TRAKT_CLIENT_ID": "from-env",
        "TRAKT_ID": "from-yaml",
    }
    settings = load_settings(env)
    assert settings.max_retries == 7
    assert settings.tracker("trakt").app.client_id == "from-env"


def test_defaults_match_the_contract() -> None:
    settings = load_settings({})
    assert settings.database_url == "postgresql://localhost/scrobble"
    assert settings.kafka_bootstrap_servers == "localhost:9092"
    assert (settings.gateway_host, settings.gateway_port) == ("127.0.0.1", 8080)
    assert settings.gateway_public_url == "http://localhost:8080"
    assert settings.metrics_port_for("ingest") == 9101
    assert settings.metrics_port_for("dispatcher") == 9102
    assert settings.max_retries == 3
    assert settings.retry_backoff == timedelta(minutes=5)
    assert settings.playback_topic == "playback.events"
    assert load_settings({"METRICS_PORT": "9200"}).metrics_port_for("ingest") == 9200


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"METRICS_PORT": "abc"}, "METRICS_PORT"),
        ({"GATEWAY_PORT": "70000"}, "GATEWAY_PORT"),
        ({"SCROBBLE_RETRY_BACKOFF": "5 fortnights"}, "SCROBBLE_RETRY_BACKOFF"),
        ({"SCROBBLE_MAX_RETRIES": "-1"}, "SCROBBLE_MAX_RETRIES"),
        ({"DATABASE_URL": "mysql://x/y"}, "DATABASE_URL"),
        ({"KAFKA_BOOTSTRAP_SERVERS": "no-port-here"}, "KAFKA_BOOTSTRAP_SERVERS"),
        ({"TRAKT_API_URL": "ftp://trakt"}, "TRAKT_API_URL"),
        ({"TOKEN_ENCRYPTION_KEY": "not-a-key"}, "TOKEN_ENCRYPTION_KEY"),
        ({"SCROBBLE_ENABLED": "perhaps"}, "SCROBBLE_ENABLED"),
    ],
)
def test_bad_value_names_the_setting(env: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(env)
    assert named in str(caught.value)


def test_errors_never_echo_secrets() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({"TOKEN_ENCRYPTION_KEY": "sekrit-value-123"})
    assert "sekrit-value-123" not in str(caught.value)
    with pytest.raises(SettingsError) as caught:
        load_settings({"DATABASE_URL": "mysql://user:hunter2@db/x"})
    assert "hunter2" not in str(caught.value)
    assert "db" in str(caught.value)


def test_yaml_bad_value_names_the_setting(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("scrobble:\n  max_retries: lots\n")
    with pytest.raises(SettingsError, match="SCROBBLE_MAX_RETRIES"):
        load_settings({"SCROBBLE_CONFIG": str(path)})


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("scrobble:\n  max_retry: 3\n", "scrobble.max_retry"),
        ("scrobble:\n  services:\n    trakt:\n      clientid: x\n", "services.trakt.clientid"),
        ("scrobble:\n  services:\n    myspace: {}\n", "services.myspace"),
        ("other: 1\n", "scrobble:"),
        ("scrobble: [1\n", "not valid YAML"),
    ],
)
def test_yaml_mistakes_are_reported(tmp_path: Path, text: str, named: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(SettingsError) as caught:
        load_settings({"SCROBBLE_CONFIG": str(path)})
    assert named in str(caught.value)


def test_missing_config_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="SCROBBLE_CONFIG"):
        load_settings({"SCROBBLE_CONFIG": str(tmp_path / "absent.yaml")})


def test_service_without_credentials_is_disabled_with_one_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    env = {
        "TRAKT_CLIENT_ID": "id",
        "TRAKT_CLIENT_SECRET": "secret",
        "LASTFM_API_KEY": "key",  # secret missing
        "SIMKL_CLIENT_ID": "id",
        "SIMKL_CLIENT_SECRET": "secret",
        "SIMKL_ENABLED": "false",
    }
    with caplog.at_level(logging.INFO, logger="scrobble_shared.settings"):
        enabled = load_settings(env).enabled_services()
    # Trackers whose every user brings their own token need no setting of ours.
    assert enabled == ["trakt", "listenbrainz", "maloja"]
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == len(SERVICES) - len(enabled)  # one line for each tracker that is off
    assert "lastfm disabled: LASTFM_API_SECRET not set" in lines
    assert "simkl disabled by configuration (SIMKL_ENABLED=false)" in lines
    assert "anilist disabled: ANILIST_CLIENT_ID and ANILIST_CLIENT_SECRET not set" in lines


def test_require_refuses_to_start_without_a_needed_setting() -> None:
    settings = load_settings({})
    with pytest.raises(SettingsError, match="TOKEN_ENCRYPTION_KEY"):
        settings.require("token_encryption_key")
    key = Fernet.generate_key().decode()
    load_settings({"TOKEN_ENCRYPTION_KEY": key}).require("token_encryption_key")


def test_secrets_do_not_show_in_repr() -> None:
    settings = load_settings({"TRAKT_CLIENT_SECRET": "very-secret", "GATEWAY_JWT_SECRET": "jwt!"})
    assert "very-secret" not in repr(settings)
    assert "jwt!" not in repr(settings)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("5m", 300), ("1h30m", 5400), ("250ms", 0.25), ("90", 90), (45, 45), ("2d", 172800)],
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "m5", "5 m", "five minutes"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    "given",
    [
        "https://api.listenbrainz.org",
        "https://api.listenbrainz.org/",
        "https://api.listenbrainz.org/1",
        "https://api.listenbrainz.org/1/",
    ],
)
def test_listenbrainz_api_url_may_name_the_server_or_its_api(given: str) -> None:
    """Issue 17: the root URL used to crash the dispatcher at start; both forms mean the
    same API, and the client made from it starts."""
    config = load_settings({"LISTENBRAINZ_API_URL": given}).tracker("listenbrainz")
    assert config.api_url == "https://api.listenbrainz.org/1"
    client = tracker("listenbrainz").client(config)
    assert client.service == "listenbrainz"
