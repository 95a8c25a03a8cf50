"""The edge's pure parts: its limits, its JSON answers, the descriptor fit and the deadline sweep."""

from __future__ import annotations

import asyncio
import os
import resource

import httptools
import orjson
import pytest

from hookyard.config import load_settings
from hookyard.errors import ConfigurationError
from producers.deadlines import DeadlineSweep
from producers.edge import (
    RESERVED_DESCRIPTORS,
    EdgeLimits,
    error_response,
    fit_to_descriptors,
    framing_detail,
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("HOOKYARD_"):
            monkeypatch.delenv(name)


def test_default_limits_are_the_settings_defaults() -> None:
    assert EdgeLimits.from_settings(load_settings()) == EdgeLimits()


def test_limits_come_from_their_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOKYARD_MAX_HEADER_BYTES", "16384")
    monkeypatch.setenv("HOOKYARD_HEADER_TIMEOUT", "2.5")
    monkeypatch.setenv("HOOKYARD_KEEPALIVE_REQUESTS", "0")
    monkeypatch.setenv("HOOKYARD_MAX_CONNECTIONS", "100")
    limits = EdgeLimits.from_settings(load_settings())
    assert limits.max_header_bytes == 16384
    assert limits.header_timeout == 2.5
    assert limits.keepalive_requests == 0
    assert limits.max_connections == 100


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("HOOKYARD_MAX_HEADER_BYTES", "100"),
        ("HOOKYARD_HEADER_TIMEOUT", "0"),
        ("HOOKYARD_BODY_TIMEOUT", "-1"),
        ("HOOKYARD_MAX_CONNECTIONS", "0"),
    ],
)
def test_a_limit_out_of_bounds_is_one_line_naming_its_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError, match=variable):
        load_settings()


def test_deadlines_are_looked_at_four_times_per_shortest_timeout_between_50_ms_and_1_s() -> None:
    assert EdgeLimits().sweep_interval == 1.0
    assert EdgeLimits(keepalive_timeout=2.0).sweep_interval == 0.5
    assert EdgeLimits(header_timeout=0.01).sweep_interval == 0.05


def test_an_error_response_is_the_spec_json_body_and_closes_the_connection() -> None:
    response = error_response(
        431,
        "headers_too_large",
        "Too big.",
        default_headers=[(b"server", b"uvicorn")],
        headers=[(b"retry-after", b"1")],
    )
    head, _, body = response.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"HTTP/1.1 431 Request Header Fields Too Large"
    assert set(lines[1:]) == {
        b"server: uvicorn",
        b"retry-after: 1",
        b"content-type: application/json",
        b"content-length: %d" % len(body),
        b"connection: close",
    }
    assert orjson.loads(body) == {"error": "headers_too_large", "detail": "Too big."}


def _parser_error(raw: bytes) -> httptools.HttpParserError:
    class Quiet:
        def on_headers_complete(self) -> None:
            raise ValueError("refused by a callback")

    parser = httptools.HttpRequestParser(Quiet())
    with pytest.raises(httptools.HttpParserError) as caught:
        parser.feed_data(raw)
    return caught.value


def test_a_framing_error_detail_is_a_sentence_with_the_parsers_reason() -> None:
    detail = framing_detail(_parser_error(b"POST / HTTP/1.1\r\nContent-Length: abc\r\n\r\n"))
    assert detail == "The request is not valid HTTP/1.1: Invalid character in Content-Length."


def test_a_callback_error_detail_says_the_head_could_not_be_read() -> None:
    detail = framing_detail(_parser_error(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
    assert detail == "The request line or headers could not be read as HTTP/1.1."


def _rlimits(
    soft: int, hard: int, *, settable: bool = True
) -> tuple[list[tuple[int, int]], dict[str, object]]:
    calls: list[tuple[int, int]] = []

    def getrlimit(which: int) -> tuple[int, int]:
        return (calls[-1] if calls else (soft, hard)) if which == resource.RLIMIT_NOFILE else (0, 0)

    def setrlimit(which: int, limits: tuple[int, int]) -> None:
        if not settable:
            raise ValueError("not allowed")
        calls.append(limits)

    return calls, {"getrlimit": getrlimit, "setrlimit": setrlimit}


def test_enough_descriptors_leave_the_connection_bound_alone() -> None:
    calls, fakes = _rlimits(65536, 65536)
    assert fit_to_descriptors(EdgeLimits(max_connections=2048), **fakes).max_connections == 2048  # type: ignore[arg-type]
    assert calls == []


def test_the_soft_descriptor_limit_is_raised_when_the_hard_one_allows_the_bound() -> None:
    calls, fakes = _rlimits(1024, 1_048_576)
    assert fit_to_descriptors(EdgeLimits(max_connections=2048), **fakes).max_connections == 2048  # type: ignore[arg-type]
    assert calls == [(2048 + RESERVED_DESCRIPTORS, 1_048_576)]


def test_the_connection_bound_is_lowered_to_what_the_hard_descriptor_limit_allows() -> None:
    calls, fakes = _rlimits(1024, 1500)
    fitted = fit_to_descriptors(EdgeLimits(max_connections=2048), **fakes)  # type: ignore[arg-type]
    assert calls == [(1500, 1500)]
    assert fitted.max_connections == 1500 - RESERVED_DESCRIPTORS


def test_the_connection_bound_fits_the_soft_limit_when_it_may_not_be_raised() -> None:
    _, fakes = _rlimits(1024, 1_048_576, settable=False)
    fitted = fit_to_descriptors(EdgeLimits(max_connections=2048), **fakes)  # type: ignore[arg-type]
    assert fitted.max_connections == 1024 - RESERVED_DESCRIPTORS


class Item:
    def __init__(self, deadline: float, fail: bool = False) -> None:
        self.deadline = deadline
        self.expired = 0
        self.fail = fail

    def expire(self) -> None:
        self.expired += 1
        self.deadline = 0.0
        if self.fail:
            raise RuntimeError("broken connection")


def _watched(sweep: DeadlineSweep, *items: Item) -> None:
    """Watch ``items`` on a loop that is closed again: passes are then made by calling sweep()."""

    async def watch() -> None:
        for item in items:
            sweep.watch(item, asyncio.get_running_loop())

    asyncio.run(watch())


def test_a_sweep_expires_exactly_the_items_whose_deadline_has_passed() -> None:
    sweep = DeadlineSweep(60.0)
    due, later, none = Item(5.0), Item(15.0), Item(0.0)
    _watched(sweep, due, later, none)
    assert sweep.sweep(10.0) == 1
    assert (due.expired, later.expired, none.expired) == (1, 0, 0)
    assert sweep.sweep(10.0) == 0  # expire() cleared the deadline: once only
    assert sweep.sweep(20.0) == 1
    assert later.expired == 1


def test_one_failing_expiry_neither_stops_the_others_nor_repeats() -> None:
    passes = []
    sweep = DeadlineSweep(60.0, on_pass=lambda: passes.append(1))
    broken, fine = Item(1.0, fail=True), Item(1.0)
    _watched(sweep, broken, fine)
    passes.clear()  # the closed loop's task made its last report
    assert sweep.sweep(2.0) == 2
    assert (broken.expired, fine.expired) == (1, 1)
    assert len(sweep) == 1  # the broken one is no longer watched
    assert passes == [1]


def test_the_sweep_runs_on_its_own_while_something_is_watched_and_stops_after() -> None:
    async def scenario() -> tuple[int, bool]:
        loop = asyncio.get_running_loop()
        sweep = DeadlineSweep(0.05)
        item = Item(loop.time() + 0.1)
        sweep.watch(item, loop)
        for _ in range(100):
            if item.expired:
                break
            await asyncio.sleep(0.02)
        sweep.forget(item)
        await asyncio.sleep(0.2)
        return item.expired, sweep._task is None

    assert asyncio.run(scenario()) == (1, True)
