"""Turn a results file of ``hookyard bench`` into the README's table, each target judged from the data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

#: RSS each of web and worker must stay under, and the most growth a soak may show.
RSS_LIMIT_MB = 200
SOAK_GROWTH_LIMIT_MB = 10


def load(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _mark(met: bool) -> str:
    return "met" if met else "**not met**"


def _find(results: list[dict[str, Any]], scenario: str, size: str) -> dict[str, Any] | None:
    found = [r for r in results if r["scenario"] == scenario and r["size"] == size]
    return found[-1] if found else None


def _runs(results: list[dict[str, Any]], scenario: str, size: str) -> list[tuple[str, dict[str, Any]]]:
    """Every run of a scenario and size, each with its label when there are several."""
    found = [r for r in results if r["scenario"] == scenario and r["size"] == size]
    if len(found) == 1:
        return [("", found[0])]
    return [(f" (run {n} of {len(found)}, {r.get('started_at', '')})", r) for n, r in enumerate(found, 1)]


#: Targets of the domain scenarios (issues 9 to 11).
KEYS_FRACTION_OF_TOKEN = 0.95
ERRORS_MIN_PER_S = 3000
ERRORS_HOT_FRACTION = 0.8
NAIVE_RATIO = 3
FRESHNESS_WITHIN_1S = 0.99
SWEEP_LIMIT_S = 1.0
HEARTBEATS_PEAK_PER_S = 5000
USAGE_MIN_PER_S = 20000
SUMMARY_P95_MS = 50
RESERVATION_PAIRS_PER_S = 1000
RESERVATION_P99_MS = 25


def _domain_runs(results: list[dict[str, Any]], scenario: str) -> list[tuple[str, dict[str, dict[str, Any]]]]:
    """Each run of a domain scenario as {variant: result}, labelled when the file holds several.

    Variants pair only within their run (``run``): a ratio never mixes two runs.
    """
    runs: dict[str, dict[str, dict[str, Any]]] = {}
    for result in results:
        if result["scenario"] == scenario and "variant" in result:
            runs.setdefault(str(result.get("run")), {})[str(result["variant"])] = result
    if len(runs) == 1:
        return [("", next(iter(runs.values())))]
    labelled = []
    for number, variants in enumerate(runs.values(), 1):
        started = min(str(r.get("started_at", "")) for r in variants.values())
        labelled.append((f" (run {number} of {len(runs)}, {started})", variants))
    return labelled


def _rate(result: dict[str, Any]) -> str:
    return f"{result['events_per_s']:,.0f}"


def judge_domains(results: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """The rows of the keys, errors, heartbeats and usage targets."""
    rows: list[tuple[str, str, str]] = []
    for run, variants in _domain_runs(results, "keys"):
        token, keyed = variants.get("token"), variants.get("keys")
        if token and keyed:
            share = keyed["events_per_s"] / token["events_per_s"]
            rows.append(
                (
                    f"keys e2e ≥ 95% of token e2e ({keyed['bearer_tokens_used']:,} keys){run}",
                    f"{_rate(keyed)} vs {_rate(token)} events/s = {100 * share:.0f}%",
                    _mark(share >= KEYS_FRACTION_OF_TOKEN),
                )
            )
    for run, variants in _domain_runs(results, "errors"):
        distinct, hot, naive = variants.get("distinct"), variants.get("hot"), variants.get("naive")
        for name, found in (("distinct", distinct), ("hot", hot)):
            if found:
                rows.append(
                    (
                        f"errors {name} ≥ 3,000 reports/s{run}",
                        f"{_rate(found)} reports/s ({found['patterns']:,} pattern rows)",
                        _mark(found["events_per_s"] >= ERRORS_MIN_PER_S),
                    )
                )
        if distinct and naive:
            ratio = distinct["events_per_s"] / naive["events_per_s"]
            rows.append(
                (
                    f"errors distinct ≥ 3× naive{run}",
                    f"{_rate(distinct)} vs {_rate(naive)} reports/s = {ratio:.1f}×",
                    _mark(ratio >= NAIVE_RATIO),
                )
            )
        if distinct and hot:
            share = hot["events_per_s"] / distinct["events_per_s"]
            rows.append(
                (
                    f"errors hot ≥ 80% of distinct{run}",
                    f"{_rate(hot)} vs {_rate(distinct)} reports/s = {100 * share:.0f}%",
                    _mark(share >= ERRORS_HOT_FRACTION),
                )
            )
    for run, variants in _domain_runs(results, "heartbeats"):
        rows.extend(_heartbeat_rows(run, variants))
    return rows + _usage_rows(results)


def _usage_rows(results: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    rows: list[tuple[str, str, str]] = []
    for run, variants in _domain_runs(results, "usage"):
        batch, naive = variants.get("batch"), variants.get("naive")
        if batch:
            rows.append(
                (
                    f"usage: CloudEvents batches of {batch['events_per_request']} ≥ 20,000 events/s{run}",
                    f"{_rate(batch)} events/s ({batch['meters']} meters, budgets "
                    f"{'on' if batch['budgets'] else 'absent'})",
                    _mark(batch["events_per_s"] >= USAGE_MIN_PER_S),
                )
            )
        if batch and naive:
            ratio = batch["events_per_s"] / naive["events_per_s"] if naive["events_per_s"] else float("inf")
            rows.append(
                (
                    f"usage batches ≥ 3× naive{run}",
                    f"{_rate(batch)} vs {_rate(naive)} events/s = {ratio:.1f}×",
                    _mark(ratio >= NAIVE_RATIO),
                )
            )
    for run, variants in _domain_runs(results, "usage-summary"):
        summary = variants.get("summary")
        if summary:
            p95 = summary["latency_ms"]["p95"]
            shapes = ", ".join(
                f"{name} {found['p95']:.0f}" for name, found in summary["latency_ms_by_shape"].items()
            )
            rows.append(
                (
                    f"GET /v1/usage/summary p95 < 50 ms over {summary['rows']:,} records "
                    f"({summary['target_rate']:g}/s){run}",
                    f"p50 {summary['latency_ms']['p50']:.0f}, p95 {p95:.0f} ms; p95 by shape: {shapes} ms",
                    _mark(summary["non_2xx"] == 0 and p95 < SUMMARY_P95_MS),
                )
            )
    for run, variants in _domain_runs(results, "reservations"):
        for name, found in variants.items():
            # Paced at 1,000 pairs/s: the completed rate, counted to the last answer, is met at 99%.
            p99 = found["latency_ms"]["p99"]
            failed = sum(found["failures"].values())
            rows.append(
                (
                    f"reservations ({name}, {found['budgets']} budget(s)): ≥ 1,000 reserve+commit pairs/s, "
                    f"pair p99 < 25 ms{run}",
                    f"{found['events_per_s']:,.0f} pairs/s completed ({failed} failed); "
                    f"pair p99 {p99:.1f} ms "
                    f"(reserve p99 {found['reserve_latency_ms']['p99']:.1f}, "
                    f"commit p99 {found['commit_latency_ms']['p99']:.1f} ms)",
                    _mark(found["events_per_s"] >= 0.99 * RESERVATION_PAIRS_PER_S and failed == 0
                          and p99 < RESERVATION_P99_MS),
                )
            )  # fmt: skip
    return rows


def _heartbeat_rows(run: str, variants: dict[str, dict[str, Any]]) -> list[tuple[str, str, str]]:
    rows: list[tuple[str, str, str]] = []
    steady, sweep = variants.get("steady"), variants.get("sweep")
    peak, naive = variants.get("peak"), variants.get("naive")
    if steady:
        period = f", check period {steady['check_period_s']:g} s" if "check_period_s" in steady else ""
        vacuum = steady.get("vacuum")
        if vacuum and vacuum.get("emulated_every_s"):
            period += f", autovacuum emulated every {vacuum['emulated_every_s']:g} s (server's off)"
        elif vacuum:
            period += f", server autovacuum {vacuum['server_autovacuum']}"
        what = (
            f"{steady['instances']:,} instances + {steady['ping_checks']:,} ping checks every "
            f"{steady['period_s']:g} s for {steady['duration_s']:g} s{period}, sweep on"
        )
        rows.append(
            (
                f"heartbeats: every accepted report applied ({what}){run}",
                f"{steady['applied']:,} of {steady['accepted']:,} applied "
                f"({steady['events_per_s']:,.0f} requests/s sent, {steady['non_2xx']:,} refused)",
                _mark(steady["accepted"] > 0 and steady["applied"] >= steady["accepted"]),
            )
        )
        fresh = steady["freshness"]
        rows.append(
            (
                f"heartbeats: received → committed p99 < 1 s at the same rate{period}{run}",
                f"p50 {fresh['p50_ms']:.0f}, p99 {fresh['p99_ms']:.0f} ms (interpolated in the histogram's "
                f"buckets); {100 * fresh['within_1s']:.2f}% within 1 s",
                _mark(fresh["observed"] > 0 and fresh["within_1s"] >= FRESHNESS_WITHIN_1S),
            )
        )
    if sweep:
        rows.append(
            (
                f"sweep of {sweep['subjects']:,} subjects ({sweep['due']:,} due) < 1 s{run}",
                f"{1000 * sweep['sweep_s']:.0f} ms ({sweep['flips']:,} flips); "
                f"nothing due: {1000 * sweep['idle_sweep_s']:.1f} ms",
                _mark(sweep["sweep_s"] < SWEEP_LIMIT_S),
            )
        )
    if peak:
        beside = ""
        if naive:
            ratio = peak["events_per_s"] / naive["events_per_s"] if naive["events_per_s"] else float("inf")
            beside = f" (naive {_rate(naive)}/s: {ratio:.1f}×)"
        rows.append(
            (
                f"heartbeats peak e2e ≥ 5,000/s{run}",
                f"{_rate(peak)} heartbeats/s{beside}",
                _mark(peak["events_per_s"] >= HEARTBEATS_PEAK_PER_S),
            )
        )
    return rows


def judge(results: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(target, measured, verdict) rows."""
    rows: list[tuple[str, str, str]] = []
    small = _find(results, "e2e", "small")
    if small:
        rows.append(
            (
                "e2e small ≥ 4,000 events/s",
                f"{small['events_per_s']:,.0f} events/s",
                _mark(small["events_per_s"] >= 4000),
            )
        )
    for size in ("small", "medium", "large"):
        e2e, naive = _find(results, "e2e", size), _find(results, "naive", size)
        if e2e and naive:
            ratio = e2e["events_per_s"] / naive["events_per_s"]
            rows.append(
                (
                    f"e2e {size} ≥ 3× naive",
                    f"{e2e['events_per_s']:,.0f} vs {naive['events_per_s']:,.0f} events/s = {ratio:.1f}×",
                    _mark(ratio >= 3),
                )
            )
    for size in ("small", "medium", "large"):
        for run, drain in _runs(results, "drain", size):
            rows.append(
                (
                    f"drain {size} ≥ 75% of bare COPY{run}",
                    f"{drain['events_per_s']:,.0f} vs {drain['copy_ceiling_per_s']:,.0f} rows/s = "
                    f"{100 * drain['fraction_of_copy']:.0f}%",
                    _mark(drain["fraction_of_copy"] >= 0.75),
                )
            )
    for run, latency in _runs(results, "latency", "small"):
        p99 = latency["latency_ms"]["p99"]
        rows.append(
            (
                f"202 p99 < 25 ms at {latency['target_rate']:,.0f} requests/s (small){run}",
                f"p50 {latency['latency_ms']['p50']:.1f}, p99 {p99:.1f} ms "
                f"(sent {latency['events_per_s']:,.0f}/s)",
                _mark(p99 < 25),
            )
        )
        fresh = latency["freshness_ms"]["p99"]
        rows.append(
            (
                f"received → committed p99 < 1 s at the same rate{run}",
                f"p50 {latency['freshness_ms']['p50']:.1f}, p99 {fresh:.1f} ms",
                _mark(fresh < 1000),
            )
        )
    for run, edge in _runs(results, "edge", "small"):
        loaded, unloaded = edge["loaded"]["latency_ms"]["p99"], edge["unloaded"]["latency_ms"]["p99"]
        rows.append(
            (
                f"edge: loaded 202 p99 within 2× unloaded{run}",
                f"p99 {loaded:.1f} ms beside {edge['attack']['slow_clients']:,} slow clients and "
                f"{edge['attack']['header_bytes'] >> 20} MiB headers, {unloaded:.1f} ms alone = "
                f"{edge['p99_ratio']:.2f}×",
                _mark(edge["p99_ratio"] <= 2),
            )
        )
    rows += judge_domains(results)
    peaks = {
        name: max(r["peak_rss_mb"].get(name, 0) for r in results)
        for name in ("web", "worker")
        if any(name in r["peak_rss_mb"] for r in results)
    }
    if peaks:
        rows.append(
            (
                "web and worker RSS < 200 MB per process (every scenario)",
                ", ".join(f"{name} peak {mb:.0f} MB" for name, mb in peaks.items()),
                _mark(all(mb < RSS_LIMIT_MB for mb in peaks.values())),
            )
        )
    soak = _find(results, "soak", "small")
    if soak:
        growth = soak["rss_growth_mb_second_to_last_minute"]
        minutes = soak["requests"] / soak["events_per_s"] / 60
        rows.append(
            (
                f"no RSS growth over a {minutes:.0f}-minute soak",
                ", ".join(f"{name} {mb:+.1f} MB" for name, mb in growth.items()),
                _mark(all(abs(mb) < SOAK_GROWTH_LIMIT_MB for mb in growth.values())),
            )
        )
    return rows


def markdown(results: list[dict[str, Any]]) -> str:
    lines = ["| target | measured | verdict |", "|---|---|---|"]
    lines += [f"| {target} | {measured} | {verdict} |" for target, measured, verdict in judge(results)]
    lines += [
        "",
        "| scenario | size | events/s | 202 p50 / p99 ms | CPU % of a core (web, worker, PG, RabbitMQ) |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        cpu = r.get("cpu_percent_of_one_core", {})
        latency = r.get("latency_ms") or {}
        lat = f"{latency['p50']:.1f} / {latency['p99']:.1f}" if latency else "–"
        parts = [cpu.get(name) for name in ("web", "worker", "postgresql", "rabbitmq")]
        cpus = ", ".join("–" if part is None else f"{part:.0f}" for part in parts)
        name = f"{r['scenario']} {r['variant']}" if "variant" in r else r["scenario"]
        lines.append(f"| {name} | {r['size']} | {r['events_per_s']:,.0f} | {lat} | {cpus} |")
    machine = results[0]["machine"] if results else {}
    lines += [
        "",
        f"Machine: {machine.get('cpus')} cores, {machine.get('memory_gb')} GiB, "
        f"Python {machine.get('python')}, kernel {machine.get('kernel')}; load generator, PostgreSQL, "
        "RabbitMQ and every Hookyard process on it together.",
    ]
    return "\n".join(lines)
