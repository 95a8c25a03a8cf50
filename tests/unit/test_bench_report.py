"""The benchmark report judges each target from the measurements, never from a hard-coded answer."""

from __future__ import annotations

from typing import Any

from ops.bench.load import percentiles
from ops.bench.report import judge, markdown

MACHINE = {"cpus": 2, "memory_gb": 23.5, "python": "3.11.7", "kernel": "6"}


def result(scenario: str, size: str, events_per_s: float, **extra: Any) -> dict[str, Any]:
    return {
        "scenario": scenario, "size": size, "events_per_s": events_per_s, "machine": MACHINE,
        "peak_rss_mb": {"web": 70.0, "worker": 90.0}, "cpu_percent_of_one_core": {"web": 80.0},
        "latency_ms": {"p50": 5.0, "p95": 9.0, "p99": 12.0, "max": 20.0}, **extra,
    }  # fmt: skip


def verdicts(results: list[dict[str, Any]]) -> dict[str, str]:
    return {target: verdict for target, _, verdict in judge(results)}


def test_each_target_is_met_or_not_by_its_own_measurement() -> None:
    results = [
        result("e2e", "small", 4100),
        result("naive", "small", 1000),
        result("e2e", "large", 2000),
        result("naive", "large", 800),
        result("drain", "small", 20000, copy_ceiling_per_s=35000, fraction_of_copy=20000 / 35000),
        result("latency", "small", 2000, target_rate=2000, freshness_ms={"p50": 5, "p99": 30}),
    ]
    got = verdicts(results)
    assert got["e2e small ≥ 4,000 events/s"] == "met"
    assert got["e2e small ≥ 3× naive"] == "met"
    assert got["e2e large ≥ 3× naive"] == "**not met**"  # 2.5×
    assert got["drain small ≥ 75% of bare COPY"] == "**not met**"
    assert got["202 p99 < 25 ms at 2,000 requests/s (small)"] == "met"
    assert got["web and worker RSS < 200 MB per process (every scenario)"] == "met"


def test_rss_over_the_limit_in_any_scenario_fails_the_memory_target() -> None:
    heavy = result("e2e", "large", 3000)
    heavy["peak_rss_mb"] = {"web": 80.0, "worker": 240.0}
    assert verdicts([result("e2e", "small", 5000), heavy])[
        "web and worker RSS < 200 MB per process (every scenario)"
    ] == ("**not met**")


def test_soak_growth_is_judged_per_process() -> None:
    soak = result(
        "soak",
        "small",
        1000,
        requests=600_000,
        rss_growth_mb_second_to_last_minute={"web": 1.5, "worker": 14.0},
    )
    assert verdicts([soak])["no RSS growth over a 10-minute soak"] == "**not met**"


def test_markdown_names_the_machine_and_every_run() -> None:
    text = markdown([result("e2e", "small", 4100), result("ingest", "medium", 3900)])
    assert "2 cores, 23.5 GiB" in text
    assert "| ingest | medium | 3,900 |" in text


def test_percentiles_are_nearest_rank() -> None:
    samples = [float(n) for n in range(1, 101)]
    assert percentiles(samples) == {"p50": 50.0, "p95": 95.0, "p99": 99.0, "max": 100.0}
    assert percentiles([]) == {"p50": 0.0, "p95": 0.0, "p99": 0.0, "max": 0.0}


def test_every_drain_run_is_judged_on_its_own() -> None:
    runs = [
        result("drain", "small", 38000, copy_ceiling_per_s=52000, fraction_of_copy=38000 / 52000,
               started_at="t1"),
        result("drain", "small", 43000, copy_ceiling_per_s=53000, fraction_of_copy=43000 / 53000,
               started_at="t2"),
    ]  # fmt: skip
    got = verdicts(runs)
    assert got["drain small ≥ 75% of bare COPY (run 1 of 2, t1)"] == "**not met**"
    assert got["drain small ≥ 75% of bare COPY (run 2 of 2, t2)"] == "met"
