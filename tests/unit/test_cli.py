"""The ``hookyard`` console script: --help everywhere, and one clear line for every refusal.

The refusals run the installed entry point as a subprocess, because the one-line contract lives
in ``ops.cli.main`` around the click group; the --help sweep calls that same ``main`` in-process to
keep the tier fast. None of them needs PostgreSQL or RabbitMQ.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest

from ops.cli import cli, main

_CONFIG_VARIABLES = {
    "DATABASE_URL",
    "AMQP_URL",
    "GITHUB_WEBHOOK_SECRET",
    "SLACK_SIGNING_SECRET",
    "LINEAR_WEBHOOK_SECRET",
}


def hookyard_script() -> str:
    beside_python = Path(sys.executable).parent / "hookyard"
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("hookyard")
    assert found, "the hookyard console script is not installed"
    return found


def clean_env(**variables: str) -> dict[str, str]:
    """The current environment without Hookyard's configuration, plus ``variables``."""
    env = {
        name: value
        for name, value in os.environ.items()
        if name.upper() not in _CONFIG_VARIABLES and not name.upper().startswith("HOOKYARD_")
    }
    # Wide enough that click never wraps a variable name in the middle.
    env["COLUMNS"] = "200"
    env.update(variables)
    return env


def hookyard(*args: str, **variables: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [hookyard_script(), *args],
        capture_output=True,
        text=True,
        env=clean_env(**variables),
        timeout=60,
        check=False,
    )


def command_paths(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = []
    for name, command in sorted(group.commands.items()):
        paths.append((*prefix, name))
        if isinstance(command, click.Group):
            paths.extend(command_paths(command, (*prefix, name)))
    return paths


def command_at(path: tuple[str, ...]) -> click.Command:
    command: click.Command = cli
    for name in path:
        assert isinstance(command, click.Group)
        command = command.commands[name]
    return command


ALL_COMMANDS = command_paths(cli)


def help_in_process(monkeypatch, capsys, path: tuple[str, ...]) -> tuple[int, str, str]:
    """``hookyard <path> --help`` through ``ops.cli.main``, the function the console script calls.

    In-process to keep the tier fast; the subprocess tests below cover the installed script itself.
    """
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setattr(sys, "argv", ["hookyard", *path, "--help"])
    try:
        code = main() or 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(result: subprocess.CompletedProcess[str], exit_code: int) -> str:
    assert result.returncode == exit_code, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert result.stdout == ""
    return lines[0]


# --- --help ---


@pytest.mark.parametrize("subcommand", ["migrate", "serve", "worker", "scheduler", "dlq", "bench"])
def test_every_subcommand_of_the_spec_exists(subcommand):
    assert subcommand in cli.commands


@pytest.mark.parametrize("subcommand", ["list", "show", "replay", "purge"])
def test_every_dlq_operation_of_the_spec_exists(subcommand):
    assert ("dlq", subcommand) in ALL_COMMANDS


@pytest.mark.parametrize("path", [(), *ALL_COMMANDS], ids=lambda path: " ".join(("hookyard", *path)))
def test_help_exits_zero_and_shows_usage(monkeypatch, capsys, path):
    code, out, err = help_in_process(monkeypatch, capsys, path)
    assert code == 0, err
    assert out.startswith(f"Usage: {' '.join(('hookyard', *path))}")
    assert err == ""


def spec_variables(path: tuple[str, ...]) -> list[str]:
    """The SPEC.md configuration variables that back a flag of this command."""
    return [
        str(param.envvar)
        for param in command_at(path).params
        if param.envvar in {*_CONFIG_VARIABLES, "HOOKYARD_INGEST_TOKEN", "HOOKYARD_MAX_BODY_BYTES"}
    ]


@pytest.mark.parametrize("path", [path for path in ALL_COMMANDS if spec_variables(path)], ids=" ".join)
def test_help_names_the_configuration_variable_behind_each_flag(monkeypatch, capsys, path):
    _, out, _ = help_in_process(monkeypatch, capsys, path)
    for variable in spec_variables(path):
        assert variable in out


def test_the_installed_script_answers_help():
    result = hookyard("--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Usage: hookyard")
    for subcommand in ("migrate", "serve", "worker", "scheduler", "dlq", "bench"):
        assert subcommand in result.stdout


def test_worker_help_names_the_database_and_broker_variables():
    result = hookyard("worker", "--help")
    assert result.returncode == 0, result.stderr
    assert "DATABASE_URL" in result.stdout
    assert "AMQP_URL" in result.stdout


def test_version_prints_the_package_version():
    result = hookyard("--version")
    assert result.returncode == 0
    assert "0.1.0" in result.stdout


# --- One line, non-zero, never a traceback ---


def test_an_unknown_flag_exits_2_with_one_line_naming_it():
    line = assert_one_line_error(hookyard("--no-such-flag"), 2)
    assert "--no-such-flag" in line


def test_an_unknown_subcommand_exits_2_with_one_line():
    line = assert_one_line_error(hookyard("frobnicate"), 2)
    assert "frobnicate" in line


def test_a_flag_with_a_bad_value_exits_2_with_one_line_naming_the_flag():
    line = assert_one_line_error(hookyard("serve", "--port", "eighty"), 2)
    assert "--port" in line


def test_a_missing_argument_exits_2_with_one_line():
    line = assert_one_line_error(hookyard("dlq", "show"), 2)
    assert "LETTER_ID" in line


def test_migrate_with_a_bad_database_url_exits_1_with_one_line_naming_it():
    line = assert_one_line_error(hookyard("migrate", DATABASE_URL="mysql://root@127.0.0.1:3306/hookyard"), 1)
    assert "DATABASE_URL" in line


def test_a_bad_amqp_url_exits_1_with_one_line_naming_it():
    line = assert_one_line_error(hookyard("preflight", AMQP_URL="http://127.0.0.1:15672/"), 1)
    assert "AMQP_URL" in line


def test_migrate_against_an_unreachable_postgresql_exits_1_with_one_line_naming_it():
    # Port 1 refuses at once: nothing listens there.
    result = hookyard("migrate", "--database-url", "postgresql://postgres@127.0.0.1:1/hookyard")
    line = assert_one_line_error(result, 1)
    assert "PostgreSQL" in line


def test_dlq_list_with_a_malformed_age_exits_1_with_one_line_quoting_it():
    line = assert_one_line_error(hookyard("dlq", "list", "--older-than", "5x"), 1)
    assert "'5x'" in line


def test_preflight_names_the_unreachable_service_and_how_to_start_it():
    result = hookyard(
        "preflight",
        DATABASE_URL="postgresql://postgres@127.0.0.1:1/hookyard",
        AMQP_URL="amqp://guest:guest@127.0.0.1:1/%2F",
    )
    # One line per problem, each with its remedy.
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2, result.stderr
    rabbitmq, postgres = lines
    assert "RabbitMQ is unreachable at 127.0.0.1:1" in rabbitmq
    assert "PostgreSQL is unreachable at 127.0.0.1:1" in postgres
    assert all("docker compose up -d" in line for line in lines)
