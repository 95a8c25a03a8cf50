"""Load ``queries.sql`` once into a name → SQL mapping (procrastinate's habit)."""

from __future__ import annotations

import functools
import re
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


@functools.cache
def queries() -> dict[str, LiteralString]:
    """Every named query of ``schema/queries.sql``."""
    return parse_queries(resources.files("schema").joinpath("queries.sql").read_text(encoding="utf-8"))
