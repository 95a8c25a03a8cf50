"""``POST /v1/heartbeats``: instances of a service report in, with their CPU, memory and metrics.

Each object becomes one report of the ``heartbeats`` queue for the check named by its
``service`` (``default`` when unsaid) in its project, subject ``host:pid:port``. A check first
seen this way is created by the worker with SPEC's defaults. Accepted or refused whole.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from contracts.heartbeats import CheckReport, Origin
from contracts.ingest import HeartbeatIn, HeartbeatSignal
from producers.deliveries import Verified
from producers.deployments import owned_objects
from producers.keys import KeyRegistry, Principal

_SIGNALS = {HeartbeatSignal.OK: "success", HeartbeatSignal.START: "start", HeartbeatSignal.FAIL: "fail"}


def subject_of(host: str, pid: int | None, port: int | None) -> str:
    """The subject key of an instance: ``host:pid:port`` (an unsaid part is empty)."""
    return f"{host}:{'' if pid is None else pid}:{'' if port is None else port}"


def verify(
    headers: Mapping[str, str],
    raw: bytes,
    principal: Principal,
    received_at: datetime,
    registry: KeyRegistry | None = None,
) -> Verified:
    """Validate an authenticated ``/v1/heartbeats`` request; every object becomes one report."""
    reports = []
    for one in owned_objects(headers, raw, HeartbeatIn, principal, registry, project_required=True):
        beat, project_id = one.body, one.project_id
        check_id = (
            registry.check_by_slug(project_id, beat.service)
            if registry is not None and project_id is not None
            else None
        )
        instance = beat.instance
        reports.append(
            CheckReport(
                project_id=project_id,
                project=one.project,
                check_id=check_id,
                check=beat.service,
                subject=subject_of(instance.host, instance.pid, instance.port),
                report_id=f"heartbeat:{beat.id}",
                signal=_SIGNALS[beat.signal],
                at=beat.sent_at,
                received_at=received_at,
                origin=Origin.HEARTBEAT,
                host=instance.host,
                pid=instance.pid,
                port=instance.port,
                service=beat.service,
                cpu_percent=beat.cpu_percent,
                memory_mb=beat.memory_mb,
                metrics=beat.metrics,
            )
        )
    return Verified(events=reports)
