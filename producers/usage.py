"""``POST /v1/usage``: usage records from a service, with the operator token or a project key.

Each object becomes one record of the ``usage`` queue, identified by its ``id`` within its
project, and is stored once whatever the redeliveries. Accepted or refused whole.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from pydantic import ValidationError

from contracts.ingest import UsageIn
from contracts.metering import UsageOrigin, UsageRecord
from producers.deliveries import Verified
from producers.deployments import parse_items, validation_error
from producers.errors import IngestError
from producers.keys import KeyRegistry, Principal, project_of


def require_project(project: str | None, index: int, is_array: bool) -> None:
    """The operator token must say whose record it is (a key implies its own project)."""
    if project is None:
        raise IngestError(
            422,
            "validation_failed",
            "project is required with the operator token.",
            errors=[{"field": f"[{index}].project" if is_array else "project", "message": "Field required"}],
        )


def verify(
    headers: Mapping[str, str],
    raw: bytes,
    principal: Principal,
    received_at: datetime,
    registry: KeyRegistry | None = None,
) -> Verified:
    """Validate an authenticated ``/v1/usage`` request; every object becomes one record."""
    items, is_array = parse_items(headers, raw)
    failures: list[tuple[int | None, ValidationError]] = []
    records = []
    for index, item in enumerate(items):
        try:
            usage = UsageIn.model_validate(item)
        except ValidationError as exc:
            failures.append((index if is_array else None, exc))
            continue
        project_id, project = project_of(principal, usage.project, registry)
        require_project(project, index, is_array)
        records.append(
            UsageRecord(
                project_id=project_id,
                project=project,
                usage_id=f"v1:{usage.id}",
                resource_type=usage.resource_type,
                resource_subtype=usage.resource_subtype,
                amount=usage.quantity,
                unit=usage.unit,
                unit_cost=usage.unit_cost,
                currency=usage.currency,
                cost_cad=usage.cost_cad,
                machine=usage.machine,
                recorded_at=usage.occurred_at,
                received_at=received_at,
                origin=UsageOrigin.V1,
                metadata=usage.metadata,
            )
        )
    if failures:
        raise validation_error(failures)
    return Verified(events=records)
