"""Prometheus histograms read from the fleet's ``/metrics``: what a window added, and its quantiles.

The worker observes ``hookyard_event_freshness_seconds`` (received → committed) for every report
it stores. The bench reads the cumulative buckets of every worker process before and after the
measured window; the difference is the window's own histogram.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import httpx
from prometheus_client.parser import text_string_to_metric_families

#: Upper bound (``le``) → cumulative count, ``+Inf`` included.
Buckets = dict[float, float]


def buckets_from_text(text: str, name: str) -> Buckets:
    """The cumulative buckets of histogram ``name`` in an exposition, summed over label sets."""
    found: Buckets = {}
    for family in text_string_to_metric_families(text):
        if family.name != name:
            continue
        for sample in family.samples:
            if sample.name == f"{name}_bucket":
                bound = float(sample.labels["le"])
                found[bound] = found.get(bound, 0.0) + sample.value
    return found


def add(histograms: Iterable[Buckets]) -> Buckets:
    total: Buckets = {}
    for histogram in histograms:
        for bound, count in histogram.items():
            total[bound] = total.get(bound, 0.0) + count
    return total


def window(before: Mapping[float, float], after: Mapping[float, float]) -> Buckets:
    """What was observed between two readings of the same cumulative histogram."""
    return {bound: count - before.get(bound, 0.0) for bound, count in after.items()}


def quantile(buckets: Mapping[float, float], q: float) -> float:
    """``histogram_quantile`` as Prometheus computes it: linear within the bucket that holds ``q``.

    ``nan`` with no observation; the largest finite bound when ``q`` falls in the ``+Inf`` bucket.
    """
    bounds = sorted(buckets)
    total = buckets.get(math.inf, buckets[bounds[-1]] if bounds else 0.0)
    if not bounds or total <= 0:
        return math.nan
    rank = q * total
    lower_bound, lower_count = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if math.isinf(bound):
                return lower_bound
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (count - lower_count)
        lower_bound, lower_count = bound, count
    return bounds[-1]


def fraction_within(buckets: Mapping[float, float], bound: float) -> float:
    """The share of observations at most ``bound`` (which must be one of the bucket bounds)."""
    total = buckets.get(math.inf, 0.0)
    return buckets.get(bound, 0.0) / total if total else math.nan


def scrape(urls: Iterable[str], name: str) -> Buckets:
    """``name``'s buckets summed over every ``/metrics`` of ``urls`` (worker processes)."""
    return add(buckets_from_text(httpx.get(url, timeout=5).text, name) for url in urls)


def sample_sum(text: str, sample: str) -> float:
    """The sum of every sample named ``sample`` (``hookyard_sweep_seconds_count``, ...) in an exposition."""
    return sum(
        found.value
        for family in text_string_to_metric_families(text)
        for found in family.samples
        if found.name == sample
    )
