"""``POST /v1/usage``: usage records from a service, with the operator token or a project key.

Each object becomes one record of the ``usage`` queue, identified by its ``id`` within its
project, and is stored once whatever the redeliveries. Accepted or refused whole.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from contracts.ingest import UsageIn
from contracts.metering import UsageOrigin, UsageRecord
from producers.deliveries import Verified
from producers.deployments import owned_objects
from producers.keys import KeyRegistry, Principal


def verify(
    headers: Mapping[str, str],
    raw: bytes,
    principal: Principal,
    received_at: datetime,
    registry: KeyRegistry | None = None,
) -> Verified:
    """Validate an authenticated ``/v1/usage`` request; every object becomes one record."""
    records = []
    for one in owned_objects(headers, raw, UsageIn, principal, registry, project_required=True):
        usage = one.body
        records.append(
            UsageRecord(
                project_id=one.project_id,
                project=one.project,
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
    return Verified(events=records)
