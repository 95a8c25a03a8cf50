"""The domain scenarios' requests: each a new identity, shaped as the endpoints and senders expect."""

from __future__ import annotations

import gzip
import math
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import orjson

from contracts.grouping import group, report_from_sentry_event
from contracts.keys import looks_like_key
from ops.bench import histograms
from ops.bench.load import write_requests
from ops.bench.payloads import (
    PLACEHOLDER,
    Instance,
    cloudevents_template,
    deployment_requests,
    peak_heartbeats,
    reservation_pairs,
    sentry_requests,
    splice,
    steady_requests,
    steady_schedule,
)
from ops.bench.seed import make_keys
from producers.sentry import decode_content, parse_envelope


def split(request: bytes) -> tuple[str, dict[str, str], bytes]:
    head, _, body = request.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    assert int(headers.get("Content-Length", "0")) == len(body)
    return lines[0], headers, body


def test_deployments_spread_evenly_over_the_keys_and_omit_the_project() -> None:
    keys = make_keys(4)
    assert all(looks_like_key(key) for key in keys)
    requests = list(deployment_requests(keys, 8, "t"))
    used = Counter(split(request)[1]["Authorization"] for request in requests)
    assert used == Counter({f"Bearer {key}": 2 for key in keys})
    bodies = [orjson.loads(split(request)[2]) for request in requests]
    assert len({body["id"] for body in bodies}) == 8
    assert all("project" not in body for body in bodies)
    assert split(requests[0])[0] == "POST /v1/deployments HTTP/1.1"


def test_sentry_envelopes_are_gzip_events_of_4_to_8_kb_with_about_20_frames() -> None:
    now = datetime(2026, 11, 30, tzinfo=UTC)
    distinct = list(sentry_requests(project_id=7, key="k" * 32, count=3, distinct=True, tag="t", now=now))
    hot = list(sentry_requests(project_id=7, key="k" * 32, count=3, distinct=False, tag="t", now=now))
    patterns = {}
    for name, requests in (("distinct", distinct), ("hot", hot)):
        hashes, ids = set(), set()
        for request in requests:
            start, headers, body = split(request)
            assert start == "POST /api/7/envelope/ HTTP/1.1"
            assert headers["Content-Encoding"] == "gzip"
            assert "sentry_key=" + "k" * 32 in headers["X-Sentry-Auth"]
            envelope = parse_envelope(decode_content(body, "gzip", 1 << 20))
            (item,) = envelope.items
            event = orjson.loads(item.payload)
            assert 4000 <= len(item.payload) <= 8000
            assert 18 <= len(event["exception"]["values"][0]["stacktrace"]["frames"]) <= 22
            assert event["breadcrumbs"]["values"]
            assert {"trace", "runtime", "os"} <= set(event["contexts"])
            ids.add(event["event_id"])
            hashes.add(group(report_from_sentry_event(event)).pattern_hash)
        assert len(ids) == 3
        patterns[name] = hashes
    assert len(patterns["distinct"]) == 3
    assert len(patterns["hot"]) == 1
    assert len(gzip.decompress(split(distinct[0])[2])) > 3 * len(split(distinct[0])[2])


def instances(count: int) -> list[Instance]:
    return [Instance("k" * 32, f"host-{n}", 1000 + n, 8080) for n in range(count)]


def test_a_steady_period_sends_every_instance_and_ping_check_once_pings_spread_out() -> None:
    rate, order = steady_schedule(10, 2, period=10.0)
    assert rate == 1.2
    assert sorted(order) == list(range(12))
    ping_slots = [slot for slot, sender in enumerate(order) if sender >= 10]
    assert ping_slots == [3, 9]  # evenly spaced, not bunched at the end


def test_steady_requests_are_heartbeats_and_pings_each_with_a_fresh_id() -> None:
    requests = list(steady_requests(instances(3), ["/ping/abc"], period=1.0, duration=3.0, tag="t"))
    assert len(requests) == 12
    beats = [request for request in requests if request.startswith(b"POST /v1/heartbeats")]
    pings = [request for request in requests if request.startswith(b"GET /ping/abc HTTP/1.1")]
    assert (len(beats), len(pings)) == (9, 3)
    bodies = [orjson.loads(split(beat)[2]) for beat in beats]
    assert len({body["id"] for body in bodies}) == 9
    assert Counter(body["instance"]["host"] for body in bodies) == {"host-0": 3, "host-1": 3, "host-2": 3}
    assert all(datetime.fromisoformat(body["sent_at"]).tzinfo is not None for body in bodies)


def test_peak_heartbeats_of_an_instance_are_each_newer_than_the_last() -> None:
    bodies = [orjson.loads(split(r)[2]) for r in peak_heartbeats(instances(2), 6, "t")]
    first = [body["sent_at"] for body in bodies if body["instance"]["host"] == "host-0"]
    assert first == sorted(first)
    assert len(set(first)) == 3


def test_the_cloudevents_template_keeps_its_length_once_spliced() -> None:
    template = cloudevents_template(token="t" * 32, subject="bench", batch=100, time="2026-11-30T00:00:00Z")
    assert template.count(PLACEHOLDER.encode()) == 100
    # wrk.lua's counter: two digits of thread id, fourteen of index.
    sent = splice(template, 1 * 10**14 + 42)
    _, headers, body = split(sent)
    events = orjson.loads(body)
    assert headers["Content-Type"] == "application/cloudevents-batch+json"
    assert len({event["id"] for event in events}) == 100
    assert events[0]["id"] == "0100000000000042-000"
    single = split(splice(cloudevents_template(token="t", subject="s", batch=1, time="x"), 7))
    assert single[1]["Content-Type"] == "application/cloudevents+json"
    assert orjson.loads(single[2])["id"] == "0000000000000007-000"


def test_wrk_request_files_deal_requests_round_robin(tmp_path: Path) -> None:
    mode, prefix, count = write_requests((b"req%d" % n for n in range(5)), 2, tmp_path / "r")
    assert (mode, count) == ("file", 5)
    assert (tmp_path / "r.0").read_bytes() == b"00000004req000000004req200000004req4"
    assert (tmp_path / "r.1").read_bytes() == b"00000004req100000004req3"
    assert prefix == str(tmp_path / "r")


EXPOSITION = """# HELP hookyard_event_freshness_seconds Received-to-committed latency
# TYPE hookyard_event_freshness_seconds histogram
hookyard_event_freshness_seconds_bucket{le="0.1"} 50.0
hookyard_event_freshness_seconds_bucket{le="0.5"} 90.0
hookyard_event_freshness_seconds_bucket{le="1.0"} 99.0
hookyard_event_freshness_seconds_bucket{le="+Inf"} 100.0
hookyard_event_freshness_seconds_count 100.0
hookyard_event_freshness_seconds_sum 20.0
"""


def test_a_window_of_a_histogram_and_its_quantiles_as_prometheus_computes_them() -> None:
    after = histograms.add([histograms.buckets_from_text(EXPOSITION, "hookyard_event_freshness_seconds")] * 2)
    before = {0.1: 20.0, 0.5: 20.0, 1.0: 20.0, math.inf: 20.0}
    window = histograms.window(before, after)
    assert window == {0.1: 80.0, 0.5: 160.0, 1.0: 178.0, math.inf: 180.0}
    assert histograms.quantile(window, 0.25) == 0.1 * 45 / 80
    assert histograms.quantile(window, 0.5) == 0.1 + 0.4 * (90 - 80) / 80
    assert histograms.fraction_within(window, 1.0) == 178 / 180
    assert histograms.quantile(window, 0.999) == 1.0  # in +Inf: the largest finite bound
    assert math.isnan(histograms.quantile({}, 0.5))
    assert histograms.sample_sum(EXPOSITION, "hookyard_event_freshness_seconds_count") == 100.0


def test_a_reservation_pair_commits_the_reservation_its_reserve_answered() -> None:
    pairs = list(reservation_pairs(["a" * 32, "b" * 32], 3, "t"))
    first, then = pairs[1]
    start, headers, body = split(first)
    assert start == "POST /v1/budgets/reservations HTTP/1.1"
    assert headers["Authorization"] == "Bearer " + "b" * 32
    assert orjson.loads(body)["id"] == "t-000000001"
    commit = then(orjson.dumps({"reservation_id": "5f0c", "state": "held"}))
    assert commit is not None
    start, headers, body = split(commit)
    assert start == "POST /v1/budgets/reservations/5f0c/commit HTTP/1.1"
    assert headers["Authorization"] == "Bearer " + "b" * 32
    assert orjson.loads(body) == {"amount": "8"}
    assert then(b'{"error": "budget_exceeded"}') is None
