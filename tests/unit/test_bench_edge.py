"""The edge scenario's verdict: loaded 202 p99 against unloaded, from the measurements."""

from __future__ import annotations

from typing import Any

from ops.bench.attack import answer_status
from ops.bench.report import judge, markdown

TARGET = "edge: loaded 202 p99 within 2\N{MULTIPLICATION SIGN} unloaded"


def edge_result(unloaded_p99: float, loaded_p99: float) -> dict[str, Any]:
    def phase(p99: float) -> dict[str, Any]:
        return {"latency_ms": {"p50": p99 / 2, "p95": p99 * 0.9, "p99": p99, "max": p99 * 2}}

    return {
        "scenario": "edge", "size": "small", "events_per_s": 2000.0, "target_rate": 2000.0,
        "machine": {"cpus": 2}, "peak_rss_mb": {"web": 80.0}, "cpu_percent_of_one_core": {"web": 50.0},
        "latency_ms": phase(loaded_p99)["latency_ms"], "unloaded": phase(unloaded_p99),
        "loaded": phase(loaded_p99), "p99_ratio": round(loaded_p99 / unloaded_p99, 2),
        "attack": {"slow_clients": 1000, "header_bytes": 1 << 20},
    }  # fmt: skip


def verdict(*results: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {target: (measured, mark) for target, measured, mark in judge(list(results))}


def test_loaded_p99_within_twice_unloaded_meets_the_edge_target() -> None:
    measured, mark = verdict(edge_result(10.0, 19.0))[TARGET]
    assert mark == "met"
    assert measured == (
        "p99 19.0 ms beside 1,000 slow clients and 1 MiB headers, 10.0 ms alone = 1.90\N{MULTIPLICATION SIGN}"
    )


def test_loaded_p99_over_twice_unloaded_misses_the_edge_target() -> None:
    assert verdict(edge_result(10.0, 25.0))[TARGET][1] == "**not met**"


def test_several_edge_runs_are_each_judged() -> None:
    got = verdict(edge_result(10.0, 12.0), edge_result(10.0, 30.0))
    assert [mark for target, (_, mark) in got.items() if target.startswith("edge:")] == ["met", "**not met**"]
    assert "| edge | small | 2,000 |" in markdown([edge_result(10.0, 12.0)])


def test_the_attackers_read_a_status_or_a_silent_close() -> None:
    assert answer_status(b"HTTP/1.1 408 Request Timeout\r\n") == "408"
    assert answer_status(b"") == "closed"
