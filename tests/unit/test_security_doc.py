"""docs/security.md (issue 15): the threat model on one page: actors, assets, trust
boundaries, what each control defends, how to report a vulnerability; and every command it
tells an operator to run exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from scrobble_cli.main import build_parser

DOC = Path(__file__).resolve().parents[2] / "docs" / "security.md"


def sections() -> dict[str, str]:
    text = DOC.read_text()
    parts = re.split(r"^## (.+)$", text, flags=re.M)
    return {title.strip(): body for title, body in zip(parts[1::2], parts[2::2], strict=True)}


def test_the_threat_model_has_its_parts() -> None:
    found = sections()
    for title in (
        "Actors",
        "Assets",
        "Trust boundaries",
        "Controls and what they defend",
        "Reporting a vulnerability",
    ):
        assert title in found, sorted(found)
    boundaries = found["Trust boundaries"].lower()
    for who in ("media server", "browser", "operator", "trakt", "simkl", "anilist", "last.fm"):
        assert who in boundaries, who
    assert "listenbrainz" in boundaries


def test_each_control_of_issue_15_is_described() -> None:
    controls = sections()["Controls and what they defend"]
    for words in (
        "scrobble keys rotate",
        "scrobble keys check",
        "needs_reconnect",
        "redact",
        "500 characters",
    ):
        assert words in controls, words


def test_every_scrobble_command_named_exists() -> None:
    parser = build_parser()
    named = set(re.findall(r"`scrobble ([a-z]+(?: [a-z]+)?)", DOC.read_text()))
    assert named
    for command in sorted(named):
        with pytest.raises(SystemExit) as done:  # --help exits 0; an unknown command 2
            parser.parse_args([*command.split(), "--help"])
        assert done.value.code == 0, command
