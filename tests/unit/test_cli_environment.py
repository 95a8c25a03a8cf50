"""Every command's --help names every environment variable the command reads, flag or no flag.

``READS`` is the contract: what an operator can set for each command (a command missing from it is
held to its flags' variables only). Every setting of hookyard.config.Settings must be named by
some command's --help, so a variable read without a flag cannot go unmentioned.
"""

from __future__ import annotations

import sys

import click
import pytest

from hookyard.config import Settings
from ops.cli import cli, main

SECRETS = {"GITHUB_WEBHOOK_SECRET", "SLACK_SIGNING_SECRET", "LINEAR_WEBHOOK_SECRET", "HOOKYARD_INGEST_TOKEN"}
LOGGING = {"HOOKYARD_LOG_LEVEL", "HOOKYARD_LOG_FORMAT"}

READS: dict[tuple[str, ...], set[str]] = {
    ("migrate",): {"DATABASE_URL", "HOOKYARD_PARTITIONS_AHEAD", *LOGGING},
    ("serve",): {
        "HOOKYARD_HOST",
        "HOOKYARD_PORT",
        "DATABASE_URL",
        "AMQP_URL",
        *SECRETS,
        "HOOKYARD_MAX_BODY_BYTES",
        "HOOKYARD_CONFIRM_TIMEOUT",
        "HOOKYARD_PUBLISH_BATCH",
        "HOOKYARD_PUBLISH_IN_FLIGHT",
        *LOGGING,
    },
    ("worker",): {
        "HOOKYARD_WORKER_PROCESSES",
        "HOOKYARD_WORKER_THREADS",
        "DATABASE_URL",
        "AMQP_URL",
        "HOOKYARD_STORE_GROUP_EVENTS",
        "HOOKYARD_STORE_FLUSHERS",
        "HOOKYARD_BREAKER_LIMIT",
        "HOOKYARD_BREAKER_WINDOW",
        "HOOKYARD_WORKER_METRICS_PORT",
        "HOOKYARD_METRICS_HOST",
        *LOGGING,
    },
    ("scheduler",): {
        "DATABASE_URL",
        "HOOKYARD_PARTITIONS_AHEAD",
        "HOOKYARD_RETENTION_MONTHS",
        "HOOKYARD_SCHEDULER_INTERVAL",
        "HOOKYARD_SCHEDULER_METRICS_PORT",
        "HOOKYARD_METRICS_HOST",
        *LOGGING,
    },
    ("preflight",): {
        "DATABASE_URL",
        "AMQP_URL",
        "HOOKYARD_PORT",
        "HOOKYARD_WORKER_PROCESSES",
        "HOOKYARD_WORKER_METRICS_PORT",
        "HOOKYARD_SCHEDULER_METRICS_PORT",
        "HOOKYARD_METRICS_HOST",
        *SECRETS,
    },
    ("demo",): {"HOOKYARD_URL", "DATABASE_URL", *SECRETS},
    ("dlq",): set(),
    ("dlq", "list"): {"DATABASE_URL"},
    ("dlq", "show"): {"DATABASE_URL"},
    ("dlq", "replay"): {"DATABASE_URL", "AMQP_URL"},
    ("dlq", "purge"): {"DATABASE_URL"},
    ("dlq", "breaker"): set(),
    ("dlq", "breaker", "status"): {"DATABASE_URL"},
    ("dlq", "breaker", "reset"): {"DATABASE_URL"},
    ("bench",): {"DATABASE_URL", "AMQP_URL", *LOGGING},
    ("bench-report",): set(),
}


def walk(group: click.Group, prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], click.Command]:
    """Every subcommand under ``group``, at any depth, by its path."""
    found: dict[tuple[str, ...], click.Command] = {}
    for name, command in group.commands.items():
        found[(*prefix, name)] = command
        if isinstance(command, click.Group):
            found.update(walk(command, (*prefix, name)))
    return found


COMMANDS = walk(cli)


def help_text(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], path: tuple[str, ...]
) -> str:
    """``hookyard <path> --help`` through ``ops.cli.main``, as the console script runs it."""
    monkeypatch.setenv("COLUMNS", "200")  # wide enough that click never wraps inside a name
    monkeypatch.setattr(sys, "argv", ["hookyard", *path, "--help"])
    try:
        code = main() or 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    assert code == 0, err
    assert err == ""
    return out


def test_the_contract_names_only_commands_that_exist() -> None:
    assert set(READS) <= set(COMMANDS)


@pytest.mark.parametrize("path", sorted(COMMANDS), ids=" ".join)
def test_help_succeeds_and_names_every_variable_the_command_reads(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], path: tuple[str, ...]
) -> None:
    out = help_text(monkeypatch, capsys, path)
    flags = {str(param.envvar) for param in COMMANDS[path].params if param.envvar}
    missing = sorted(variable for variable in READS.get(path, set()) | flags if variable not in out)
    assert missing == [], f"hookyard {' '.join(path)} --help does not name {missing}"


def test_help_gives_the_default_of_a_variable_read_without_a_flag(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = help_text(monkeypatch, capsys, ("worker",))
    line = next(line for line in out.splitlines() if "HOOKYARD_STORE_GROUP_EVENTS" in line)
    assert f"[default: {Settings.model_fields['hookyard_store_group_events'].default}]" in line


def test_every_setting_is_named_by_some_command(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    helps = " ".join(help_text(monkeypatch, capsys, path) for path in COMMANDS)
    unnamed = sorted(field.upper() for field in Settings.model_fields if field.upper() not in helps)
    assert unnamed == [], "settings no command's --help mentions"
