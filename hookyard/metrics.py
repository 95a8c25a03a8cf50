"""Every Prometheus metric Hookyard exports, declared once.

Counters end in ``_total`` and durations in ``_seconds``; labels are few and bounded
(never a delivery id).
"""

from __future__ import annotations

import threading

from prometheus_client import REGISTRY, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)

# --- producers (web) ---
# Requests answered, by endpoint route and status code.
HTTP_REQUESTS = Counter("hookyard_http_requests_total", "HTTP requests answered", ["endpoint", "status"])
# Time from request start to response, by endpoint route.
HTTP_DURATION = Histogram(
    "hookyard_http_request_duration_seconds", "HTTP request latency", ["endpoint"], buckets=_LATENCY_BUCKETS
)
# Events accepted (202) by source; a /v1 batch counts each event.
EVENTS_ACCEPTED = Counter("hookyard_events_accepted_total", "Events confirmed by RabbitMQ", ["source"])
# Requests refused before publishing, by source and stable error code.
EVENTS_REJECTED = Counter("hookyard_events_rejected_total", "Requests refused", ["source", "error"])
# Sentry envelope items acknowledged but not stored, by item type (a fixed set, or "other").
SENTRY_ITEMS_DROPPED = Counter(
    "hookyard_sentry_items_dropped_total", "Sentry envelope items acknowledged and not stored", ["type"]
)
# Time from publish to RabbitMQ's confirm of one broker message.
PUBLISH_CONFIRM = Histogram(
    "hookyard_publish_confirm_seconds", "Publisher confirm latency", buckets=_LATENCY_BUCKETS
)
# Events carried by one broker message.
PUBLISH_BATCH_EVENTS = Histogram(
    "hookyard_publish_batch_events", "Events per broker message", buckets=_BATCH_BUCKETS
)
# Publishes that ended in a 503, by reason (timeout, nack, returned, disconnected).
PUBLISH_FAILURES = Counter("hookyard_publish_failures_total", "Publishes not confirmed", ["reason"])
# 1 while the producer holds an open, confirming channel to RabbitMQ. Exported only by processes
# that hold a publisher (see export_broker_connected): elsewhere it would be a constant 0.
BROKER_CONNECTED = Gauge("hookyard_broker_connected", "Producer connected to RabbitMQ", registry=None)

# --- workers ---
# Events committed to PostgreSQL for the first time, by source.
EVENTS_STORED = Counter("hookyard_events_stored_total", "Events stored", ["source"])
# Events already stored when they arrived again (redeliveries, sender retries).
EVENTS_DUPLICATE = Counter("hookyard_events_duplicate_total", "Duplicate events skipped", ["source"])
# Events stored with their exact body in payload_raw beside a jsonb-safe copy (a NUL in the JSON).
EVENTS_RAW_KEPT = Counter(
    "hookyard_events_raw_kept_total", "Events stored with their exact body kept raw", ["source"]
)
# Messages or events sent to the dead letters, by queue and reason code.
DEAD_LETTERS = Counter("hookyard_dead_letters_total", "Dead letters recorded", ["queue", "reason"])
# 1 while an actor's dead-letter breaker is open (its messages wait in the queue), as this worker sees it.
BREAKER_OPEN = Gauge("hookyard_breaker_open", "Dead-letter breaker open", ["actor"])
# Times this worker opened an actor's dead-letter breaker.
BREAKER_TRIPS = Counter("hookyard_breaker_trips_total", "Dead-letter breaker trips", ["actor"])
# Transient failures (database unreachable, deadlock) that send a message back for a retry.
TRANSIENT_FAILURES = Counter("hookyard_transient_failures_total", "Transient store failures", ["kind"])
# Time of one store transaction (one or more broker messages' events), commit included.
STORE_DURATION = Histogram("hookyard_store_seconds", "Store transaction latency", buckets=_LATENCY_BUCKETS)
# Broker messages committed by one store transaction (the worker's group commit).
STORE_MESSAGES = Histogram(
    "hookyard_store_messages", "Messages per store transaction", buckets=(1, 2, 3, 4, 6, 8, 12, 16, 32)
)
# Time from the producer receiving an event to the worker committing it.
FRESHNESS = Histogram(
    "hookyard_event_freshness_seconds",
    "Received-to-committed latency",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0),
)

# --- error patterns (labelled by project: see project_label for the cap) ---
# Error reports stored for the first time (each report once, however often redelivered).
ERROR_OCCURRENCES = Counter("hookyard_error_occurrences_total", "Error reports stored", ["project"])
# Patterns seen for the first time.
ERROR_PATTERNS_NEW = Counter("hookyard_error_patterns_new_total", "New error patterns", ["project"])
# Resolved patterns that occurred again.
ERROR_REGRESSIONS = Counter("hookyard_error_regressions_total", "Error pattern regressions", ["project"])

#: Distinct project label values one process exports before the rest share "other".
PROJECT_LABEL_CAP = 200
_project_labels: set[str] = set()


def project_label(project_id: int | None) -> str:
    """A bounded ``project`` label: the project id for the first PROJECT_LABEL_CAP projects seen.

    Prometheus keeps a series per label value; a fleet with thousands of projects would
    otherwise make thousands per metric. Past the cap, projects are counted under "other".
    """
    label = str(project_id) if project_id is not None else "none"
    if label in _project_labels:
        return label
    if len(_project_labels) >= PROJECT_LABEL_CAP:
        return "other"
    _project_labels.add(label)
    return label


# --- checks ---
# Pings, heartbeats and check-ins applied (each once), by origin (ping, heartbeat, check_in).
CHECK_REPORTS = Counter("hookyard_check_reports_total", "Check reports applied", ["origin"])
# Subject status changes, by from and to status (worker reports and the scheduler's sweep).
STATUS_FLIPS = Counter("hookyard_status_flips_total", "Subject status flips", ["from_status", "to_status"])
# Subjects per status, counted by the scheduler's sweep.
SUBJECTS = Gauge("hookyard_subjects", "Monitored subjects by status", ["status"])
# Seconds until the nearest alarm (a due time or grace end); negative when the sweep lags behind.
NEXT_DEADLINE = Gauge("hookyard_next_deadline_seconds", "Seconds until the nearest subject deadline")
# Unix time of the scheduler's last completed sweep.
SWEEP_LAST_RUN = Gauge("hookyard_sweep_last_run_timestamp_seconds", "Last heartbeat sweep")
# Duration of one sweep.
SWEEP_DURATION = Histogram("hookyard_sweep_seconds", "Heartbeat sweep duration", buckets=_LATENCY_BUCKETS)

# --- usage and budgets ---
# Usage records the usage worker stored (each once), by origin (cloudevents, v1).
USAGE_RECORDS = Counter("hookyard_usage_records_total", "Usage records stored", ["origin"])
# CloudEvents that no meter takes, kept in events (source cloudevents).
CLOUDEVENTS_UNMETERED = Counter("hookyard_cloudevents_unmetered_total", "CloudEvents no meter takes")
# Budget thresholds crossed (each once per budget period), by project and threshold percentage.
BUDGET_ALERTS = Counter("hookyard_budget_alerts_total", "Budget thresholds crossed", ["project", "threshold"])

# --- budget reservations (the web process; expiry also in the scheduler) ---
# Reservations granted, by the budget's enforcement (hard, soft).
RESERVATIONS_GRANTED = Counter(
    "hookyard_reservations_granted_total", "Budget reservations granted", ["enforcement"]
)
# Reservations (and commits past their reservation) refused: hard budget_exceeded, or "none" (no budget).
RESERVATIONS_REFUSED = Counter(
    "hookyard_reservations_refused_total", "Budget reservations refused", ["enforcement"]
)
# Reservations committed into usage (each once, however often the commit is repeated).
RESERVATIONS_COMMITTED = Counter(
    "hookyard_reservations_committed_total", "Budget reservations committed", ["enforcement"]
)
# Reservations released before their TTL.
RESERVATIONS_RELEASED = Counter(
    "hookyard_reservations_released_total", "Budget reservations released", ["enforcement"]
)
# Reservations expired at the end of their TTL (by the scheduler, or by the commit or release that met them).
RESERVATIONS_EXPIRED = Counter(
    "hookyard_reservations_expired_total", "Budget reservations expired", ["enforcement"]
)

# --- scheduler ---
# Partitions created ahead of time (or split out of a default partition).
PARTITIONS_CREATED = Counter("hookyard_partitions_created_total", "Partitions created", ["table"])
# Partitions dropped by retention.
PARTITIONS_DROPPED = Counter("hookyard_partitions_dropped_total", "Partitions dropped", ["table"])
# Rows sitting in a default partition: non-zero means partitions are missing.
DEFAULT_PARTITION_ROWS = Gauge("hookyard_default_partition_rows", "Rows in default partitions", ["table"])
# Unix time of the scheduler's last completed pass.
SCHEDULER_LAST_RUN = Gauge("hookyard_scheduler_last_run_timestamp_seconds", "Last scheduler pass")
# Duration of one refresh of the materialized view project_resource_summary (CONCURRENTLY).
SUMMARY_REFRESH_DURATION = Histogram(
    "hookyard_summary_refresh_seconds",
    "Usage summary refresh duration",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0),
)

_export_lock = threading.Lock()
_broker_connected_registered = False


def export_broker_connected() -> None:
    """Add ``hookyard_broker_connected`` to this process's ``/metrics``; calling it again does nothing.

    The producer's publisher calls it. Workers and the scheduler never do, so they do not export
    a 0 that would keep ``HookyardBrokerDisconnected`` firing.
    """
    global _broker_connected_registered  # noqa: PLW0603 - one registration per process
    with _export_lock:
        if not _broker_connected_registered:
            REGISTRY.register(BROKER_CONNECTED)
            _broker_connected_registered = True
