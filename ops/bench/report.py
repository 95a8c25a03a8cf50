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
        lines.append(f"| {r['scenario']} | {r['size']} | {r['events_per_s']:,.0f} | {lat} | {cpus} |")
    machine = results[0]["machine"] if results else {}
    lines += [
        "",
        f"Machine: {machine.get('cpus')} cores, {machine.get('memory_gb')} GiB, "
        f"Python {machine.get('python')}, kernel {machine.get('kernel')}; load generator, PostgreSQL, "
        "RabbitMQ and every Hookyard process on it together.",
    ]
    return "\n".join(lines)
