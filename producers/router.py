"""A small method-and-path router for the ingestion app.

Fixed paths (``/webhooks/github``) are one dictionary lookup, as before. Paths with parameters
(``/api/{project_id:int}/envelope/``, ``/ping/{key}/{slug}``) are compiled to anchored regular
expressions once, and tried only when no fixed path matched, in the order they were added.

A path that exists under another method is a 405 with ``Allow``; anything else is a 404. The
router knows nothing of HTTP beyond that: handlers and answers belong to the app.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Generic, TypeVar

H = TypeVar("H")

#: Parameter converters: a regular expression and the function that turns the match into a value.
_CONVERTERS: dict[str, tuple[str, Callable[[str], object]]] = {
    "str": (r"[^/]+", str),
    "int": (r"[0-9]{1,18}", int),
}
_PARAMETER = re.compile(r"\{([^{}:]*)(?::([^{}]*))?\}")
_NAME = re.compile(r"[a-z_][a-z0-9_]*")


@dataclass(frozen=True)
class Match(Generic[H]):
    """A handler and the values of its path parameters."""

    handler: H
    params: dict[str, object]
    #: The route's pattern (``/api/{project_id:int}/envelope/``): a bounded metrics label.
    pattern: str


@dataclass
class _Pattern(Generic[H]):
    pattern: str
    regex: re.Pattern[str]
    converters: dict[str, Callable[[str], object]]
    handlers: dict[str, H] = field(default_factory=dict)


class MethodNotAllowed(LookupError):
    """The path exists, but not under this method; ``allowed`` lists the methods it takes."""

    def __init__(self, pattern: str, allowed: list[str]) -> None:
        super().__init__(pattern)
        self.pattern = pattern
        self.allowed = allowed


def compile_pattern(pattern: str) -> tuple[re.Pattern[str], dict[str, Callable[[str], object]]]:
    """``/ping/{key}/{slug}`` as an anchored regex and the converter of each parameter."""
    converters: dict[str, Callable[[str], object]] = {}
    regex = "^"
    position = 0
    for found in _PARAMETER.finditer(pattern):
        name, kind = found.group(1), found.group(2) or "str"
        if not _NAME.fullmatch(name):
            raise ValueError(f"bad parameter name {name!r} in {pattern}")
        if kind not in _CONVERTERS:
            raise ValueError(f"unknown converter {kind!r} in {pattern}")
        if name in converters:
            raise ValueError(f"parameter {name!r} appears twice in {pattern}")
        expression, convert = _CONVERTERS[kind]
        regex += re.escape(pattern[position : found.start()]) + f"(?P<{name}>{expression})"
        converters[name] = convert
        position = found.end()
    regex += re.escape(pattern[position:]) + "$"
    return re.compile(regex), converters


class Router(Generic[H]):
    """Routes ``(method, path)`` to a handler; see the module docstring."""

    def __init__(self) -> None:
        self._fixed: dict[str, dict[str, H]] = {}
        self._patterns: list[_Pattern[H]] = []

    def add(self, method: str, pattern: str, handler: H) -> None:
        """Serve ``method pattern`` with ``handler``; adding the same pair twice is an error."""
        if not pattern.startswith("/"):
            raise ValueError(f"a route starts with /: {pattern}")
        if "{" not in pattern:
            handlers = self._fixed.setdefault(pattern, {})
        else:
            existing = next((p for p in self._patterns if p.pattern == pattern), None)
            if existing is None:
                regex, converters = compile_pattern(pattern)
                existing = _Pattern(pattern, regex, converters)
                self._patterns.append(existing)
            handlers = existing.handlers
        if method in handlers:
            raise ValueError(f"{method} {pattern} is routed twice")
        handlers[method] = handler

    def resolve(self, method: str, path: str) -> Match[H] | None:
        """The matching handler; None for an unknown path; :class:`MethodNotAllowed` for a known one."""
        handlers = self._fixed.get(path)
        if handlers is not None:
            handler = handlers.get(method)
            if handler is None:
                raise MethodNotAllowed(path, sorted(handlers))
            return Match(handler, {}, path)
        for candidate in self._patterns:
            found = candidate.regex.match(path)
            if found is None:
                continue
            handler = candidate.handlers.get(method)
            if handler is None:
                raise MethodNotAllowed(candidate.pattern, sorted(candidate.handlers))
            try:
                params = {name: convert(found.group(name)) for name, convert in candidate.converters.items()}
            except ValueError:
                continue
            return Match(handler, params, candidate.pattern)
        return None

    def routes(self) -> Iterator[tuple[str, str]]:
        """Every ``(method, pattern)`` served, fixed paths first."""
        for path, handlers in self._fixed.items():
            for method in handlers:
                yield method, path
        for candidate in self._patterns:
            for method in candidate.handlers:
                yield method, candidate.pattern
