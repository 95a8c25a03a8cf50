"""Running the real ``hookyard`` console script from CLI tests, and what every CLI test asserts."""

from __future__ import annotations

import json
import subprocess
from typing import Any

from tests.support.processes import HOOKYARD, fleet_env


def hookyard(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``hookyard ARGS`` against ``database_url``, wide enough that tables are not wrapped."""
    return subprocess.run(
        [HOOKYARD, *args],
        env=fleet_env(DATABASE_URL=database_url, COLUMNS="200"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    """Its stdout, once it succeeded without a traceback."""
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


def as_json(result: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(ok(result))


def one_line_error(result: subprocess.CompletedProcess[str], exit_code: int = 1) -> str:
    """The one line a failing command prints, having checked it is one line and no traceback."""
    assert result.returncode == exit_code, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert result.stdout == ""
    return lines[0]
