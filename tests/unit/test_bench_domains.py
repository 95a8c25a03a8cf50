"""The domain scenarios' targets, judged from the measurements of one run, never across runs."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ops.bench.domains import freshness_summary, summary_requests
from ops.bench.report import judge, markdown

MACHINE = {"cpus": 2, "memory_gb": 23.5, "python": "3.11.7", "kernel": "6"}


def line(scenario: str, variant: str, events_per_s: float, run: str = "r1", **extra: Any) -> dict[str, Any]:
    return {
        "scenario": scenario, "variant": variant, "size": "x", "events_per_s": events_per_s, "run": run,
        "started_at": f"{run}-start", "machine": MACHINE, "peak_rss_mb": {"web": 80.0, "worker": 90.0},
        "cpu_percent_of_one_core": {"web": 80.0}, **extra,
    }  # fmt: skip


def verdicts(*results: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {target: (measured, mark) for target, measured, mark in judge(list(results))}


def test_keys_must_reach_95_percent_of_the_token_run_of_the_same_run() -> None:
    target = "keys e2e ≥ 95% of token e2e (10,000 keys)"
    token = line("keys", "token", 10000, bearer_tokens_used=1)
    assert verdicts(token, line("keys", "keys", 9600, bearer_tokens_used=10000))[target] == (
        "9,600 vs 10,000 events/s = 96%",
        "met",
    )
    assert verdicts(token, line("keys", "keys", 9400, bearer_tokens_used=10000))[target][1] == "**not met**"


def test_variants_of_different_runs_are_never_compared() -> None:
    got = verdicts(
        line("keys", "token", 10000, run="a", bearer_tokens_used=1),
        line("keys", "keys", 9000, run="a", bearer_tokens_used=10000),
        line("keys", "token", 5000, run="b", bearer_tokens_used=1),
        line("keys", "keys", 5000, run="b", bearer_tokens_used=10000),
    )
    marks = {target: mark for target, (_, mark) in got.items() if target.startswith("keys")}
    assert marks == {
        "keys e2e ≥ 95% of token e2e (10,000 keys) (run 1 of 2, a-start)": "**not met**",
        "keys e2e ≥ 95% of token e2e (10,000 keys) (run 2 of 2, b-start)": "met",
    }


def test_error_targets_rate_naive_ratio_and_hot_share() -> None:
    got = verdicts(
        line("errors", "distinct", 3500, patterns=100),
        line("errors", "hot", 2700, patterns=1),
        line("errors", "naive", 1000, patterns=50),
    )
    assert got["errors distinct ≥ 3,000 reports/s"][1] == "met"
    assert got["errors hot ≥ 3,000 reports/s"][1] == "**not met**"
    assert got["errors distinct ≥ 3\N{MULTIPLICATION SIGN} naive"] == (
        "3,500 vs 1,000 reports/s = 3.5\N{MULTIPLICATION SIGN}",
        "met",
    )
    assert got["errors hot ≥ 80% of distinct"] == ("2,700 vs 3,500 reports/s = 77%", "**not met**")


def steady(applied: int, within: float) -> dict[str, Any]:
    return line(
        "heartbeats", "steady", 1100, instances=10000, ping_checks=1000, period_s=10.0, duration_s=60.0,
        accepted=66000, applied=applied, non_2xx=0,
        freshness={"observed": applied, "p50_ms": 40.0, "p99_ms": 800.0, "within_1s": within},
    )  # fmt: skip


def test_the_steady_targets_name_the_check_period_when_the_line_has_it() -> None:
    got = verdicts({**steady(66000, 0.995), "check_period_s": 15.0})
    assert "heartbeats: received → committed p99 < 1 s at the same rate, check period 15 s" in got


def test_the_steady_targets_say_when_the_bench_vacuumed_for_a_server_without_autovacuum() -> None:
    vacuum = {"server_autovacuum": "off", "emulated_every_s": 60.0, "vacuums": []}
    got = verdicts({**steady(66000, 0.995), "check_period_s": 10.0, "vacuum": vacuum})
    assert (
        "heartbeats: received → committed p99 < 1 s at the same rate, check period 10 s, "
        "autovacuum emulated every 60 s (server's off)"
    ) in got


def test_heartbeats_every_report_applied_and_fresh_within_a_second() -> None:
    applied = (
        "heartbeats: every accepted report applied "
        "(10,000 instances + 1,000 ping checks every 10 s for 60 s, sweep on)"
    )
    fresh = "heartbeats: received → committed p99 < 1 s at the same rate"
    got = verdicts(steady(66000, 0.995))
    assert got[applied] == ("66,000 of 66,000 applied (1,100 requests/s sent, 0 refused)", "met")
    assert got[fresh][1] == "met"
    got = verdicts(steady(65999, 0.98))
    assert got[applied][1] == "**not met**"
    assert got[fresh][1] == "**not met**"


def test_sweep_and_peak_heartbeats() -> None:
    sweep = line(
        "heartbeats", "sweep", 5000, subjects=100000, due=1000, flips=1000, sweep_s=0.2, idle_sweep_s=0.003
    )
    got = verdicts(sweep, line("heartbeats", "peak", 6000), line("heartbeats", "naive", 200))
    assert got["sweep of 100,000 subjects (1,000 due) < 1 s"] == (
        "200 ms (1,000 flips); nothing due: 3.0 ms",
        "met",
    )
    assert got["heartbeats peak e2e ≥ 5,000/s"] == (
        "6,000 heartbeats/s (naive 200/s: 30.0\N{MULTIPLICATION SIGN})",
        "met",
    )
    slow = {**sweep, "sweep_s": 1.2}
    assert verdicts(slow)["sweep of 100,000 subjects (1,000 due) < 1 s"][1] == "**not met**"


def test_markdown_names_each_variant() -> None:
    text = markdown([line("errors", "hot", 3200, patterns=1)])
    assert "| errors hot | x | 3,200 |" in text


def test_freshness_summary_reads_the_window_histogram() -> None:
    summary = freshness_summary({0.5: 90.0, 1.0: 99.0, float("inf"): 100.0})
    assert summary["observed"] == 100
    assert summary["within_1s"] == 0.99
    assert summary["p99_ms"] == 1000.0
    assert freshness_summary({})["p99_ms"] == -1.0


def test_usage_batches_against_20000_events_per_s_and_naive() -> None:
    batch = line("usage", "batch", 21000, events_per_request=100, meters=2, budgets=True)
    got = verdicts(batch, line("usage", "naive", 8000, events_per_request=1, meters=2, budgets=True))
    assert got["usage: CloudEvents batches of 100 ≥ 20,000 events/s"] == (
        "21,000 events/s (2 meters, budgets on)",
        "met",
    )
    assert got["usage batches ≥ 3\N{MULTIPLICATION SIGN} naive"] == (
        "21,000 vs 8,000 events/s = 2.6\N{MULTIPLICATION SIGN}",
        "**not met**",
    )


def test_usage_summary_p95_with_each_shape_shown() -> None:
    summary = line(
        "usage-summary", "summary", 5.0, rows=10_000_000, target_rate=5.0, non_2xx=0,
        latency_ms={"p50": 10.0, "p95": 45.0, "p99": 80.0, "max": 90.0},
        latency_ms_by_shape={"month": {"p95": 12.0}, "day": {"p95": 70.0}},
    )  # fmt: skip
    target = "GET /v1/usage/summary p95 < 50 ms over 10,000,000 records (5/s)"
    assert verdicts(summary)[target] == ("p50 10, p95 45 ms; p95 by shape: month 12, day 70 ms", "met")
    assert verdicts({**summary, "non_2xx": 3})[target][1] == "**not met**"


def test_summary_requests_name_their_shape_and_carry_the_key() -> None:
    shapes = dict(summary_requests("k" * 32, datetime(2026, 11, 30, 12, tzinfo=UTC)))
    assert set(shapes) == {"month-12mo-type", "day-30d-all", "hour-24h-type", "day-30d-type-model"}
    hour = shapes["hour-24h-type"].decode()
    assert hour.startswith(
        "GET /v1/usage/summary?window=hour&resource_type=llm.tokens&from=2026-11-29T12:00:00Z"
        "&to=2026-11-30T12:00:00Z HTTP/1.1\r\n"
    )
    assert "Authorization: Bearer " + "k" * 32 in hour
    assert hour.endswith("\r\n\r\n")


def test_reservations_need_the_rate_no_failure_and_a_pair_p99_under_25_ms() -> None:
    def found(rate: float, p99: float, failed: int = 0) -> dict[str, Any]:
        return line(
            "reservations", "spread", rate, budgets=100, failures={"first": failed, "second": 0},
            latency_ms={"p50": 5.0, "p95": 9.0, "p99": p99, "max": 30.0},
            reserve_latency_ms={"p99": p99 / 2}, commit_latency_ms={"p99": p99 / 2},
        )  # fmt: skip

    target = "reservations (spread, 100 budget(s)): ≥ 1,000 reserve+commit pairs/s, pair p99 < 25 ms"
    assert verdicts(found(995, 20.0))[target] == (
        "995 pairs/s completed (0 failed); pair p99 20.0 ms (reserve p99 10.0, commit p99 10.0 ms)",
        "met",
    )
    assert verdicts(found(995, 26.0))[target][1] == "**not met**"
    assert verdicts(found(980, 20.0))[target][1] == "**not met**"
    assert verdicts(found(995, 20.0, failed=1))[target][1] == "**not met**"
