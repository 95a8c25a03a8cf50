"""The vocabulary producers and workers share: request bodies and queue messages."""

from __future__ import annotations

from contracts.events import SCHEMA_VERSION, EventBatch, EventEnvelope, EventFields, Source, encode_batch
from contracts.ingest import DeploymentIn, DeploymentStatus

__all__ = [
    "SCHEMA_VERSION",
    "DeploymentIn",
    "DeploymentStatus",
    "EventBatch",
    "EventEnvelope",
    "EventFields",
    "Source",
    "encode_batch",
]
