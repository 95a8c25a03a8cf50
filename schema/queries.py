"""Load the named-query files once into one name → SQL mapping (procrastinate's habit).

Every ``schema/*.sql`` file beside this module holds named queries, one file per domain
(``queries.sql`` for the fleet, ``tenancy.sql`` for organizations, projects and keys);
migrations live in ``schema/migrations/`` and are not named queries.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from importlib import resources
from typing import LiteralString, cast

_HEADER = re.compile(r"^-- name: (?P<name>\w+) --$", re.MULTILINE)


def parse_queries(text: str) -> dict[str, LiteralString]:
    """Split a file of ``-- name: x --`` sections into a dict; comments inside sections stay."""
    parts = _HEADER.split(text)
    found: dict[str, LiteralString] = {}
    # parts = [preamble, name1, body1, name2, body2, ...]
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in found:
            raise ValueError(f"query {name!r} is defined twice")
        # The file is part of the package, never user input: it is as literal as an inline string.
        found[name] = cast(LiteralString, body.strip())
    return found


def merge_queries(files: Iterable[tuple[str, str]]) -> dict[str, LiteralString]:
    """Parse each ``(file name, text)`` and merge them; a name defined in two files is an error."""
    merged: dict[str, LiteralString] = {}
    where: dict[str, str] = {}
    for file_name, text in files:
        for name, body in parse_queries(text).items():
            if name in merged:
                raise ValueError(f"query {name!r} is defined in both {where[name]} and {file_name}")
            merged[name] = body
            where[name] = file_name
    return merged


@functools.cache
def queries() -> dict[str, LiteralString]:
    """Every named query of every ``schema/*.sql`` file, read once per process."""
    package = resources.files("schema")
    files = sorted(
        (entry.name, entry.read_text(encoding="utf-8"))
        for entry in package.iterdir()
        if entry.is_file() and entry.name.endswith(".sql")
    )
    return merge_queries(files)
