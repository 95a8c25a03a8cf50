"""``POST /api/v1/events``: usage as CloudEvents, the way OpenMeter ingests it.

OpenMeter's clients and any CloudEvents SDK work unchanged: ``application/cloudevents+json``
(one event), ``application/cloudevents-batch+json`` or ``application/json`` (one event or an
array), with or without ``charset=utf-8``; any other type is 415. ``subject`` names the project
(its slug, or ``org/slug``); a project key may only report its own. Success is ``204`` after the
broker's confirm; a request is accepted or refused whole.

Meters turn events into usage here, in the web process, from the meters it holds in memory
(``LISTEN/NOTIFY`` like keys): each meter whose event type matches makes one usage record, so the
worker stores facts. An event that no meter takes is counted in
``hookyard_cloudevents_unmetered_total`` and kept in ``events`` (source ``cloudevents``).
``(source, id)`` is an event's identity: redelivered, it is stored and counted once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from pydantic import ValidationError

from contracts import EventEnvelope, EventFields, Source
from contracts.metering import UsageOrigin, UsageRecord, cloudevent_identity, cloudevent_usage_id
from contracts.usage import CloudEventIn, Meter, meter_amount, meter_groups, parse_media_type
from producers.deployments import MAX_BATCH, validation_error
from producers.errors import IngestError, invalid_json
from producers.keys import KeyRegistry, Principal, project_of


@dataclass
class Metered:
    """What one request becomes: usage records, and the events no meter took."""

    records: list[UsageRecord] = field(default_factory=list)
    unmetered: list[EventEnvelope] = field(default_factory=list)


def parse_events(headers: Mapping[str, str], raw: bytes) -> tuple[list[Any], bool]:
    """The request's events as JSON values, and whether they came as an array.

    415 for another media type, 400 for a body that is not JSON of the media type's shape.
    """
    media_type = parse_media_type(headers.get("content-type"))
    if media_type is None:
        raise IngestError(
            415,
            "unsupported_media_type",
            "This endpoint takes application/cloudevents+json, application/cloudevents-batch+json or "
            "application/json (charset utf-8 only).",
        )
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise invalid_json() from None
    if media_type == "application/cloudevents+json" and not isinstance(value, dict):
        raise invalid_json("A structured CloudEvent is one JSON object, so the body")
    if media_type == "application/cloudevents-batch+json" and not isinstance(value, list):
        raise invalid_json("A CloudEvents batch is a JSON array, so the body")
    events = value if isinstance(value, list) else [value]
    if not events or len(events) > MAX_BATCH:
        raise IngestError(422, "validation_failed", f"A batch holds 1 to {MAX_BATCH} events.", errors=[])
    return events, isinstance(value, list)


def _refusal(exc: ValidationError, index: int | None) -> IngestError:
    """A missing or malformed required attribute is a 400 (OpenMeter's answer); others a 422."""
    for error in exc.errors(include_url=False, include_input=False):
        if error["type"] == "missing" or (error["loc"] and error["loc"][0] == "specversion"):
            where = ".".join(str(part) for part in error["loc"])
            prefix = f"[{index}]." if index is not None else ""
            return IngestError(
                400,
                "invalid_cloudevent",
                f"The CloudEvent's {prefix}{where} is required or invalid: {error['msg']}.",
            )
    return validation_error([(index, exc)])


def meter(
    headers: Mapping[str, str],
    raw: bytes,
    principal: Principal,
    received_at: datetime,
    registry: KeyRegistry,
) -> Metered:
    """Validate an authenticated request and turn its events into usage (see the module docstring)."""
    values, is_array = parse_events(headers, raw)
    metered = Metered()
    meters = registry.snapshot.meters_by_type
    for index, value in enumerate(values):
        try:
            event = CloudEventIn.model_validate(value)
        except ValidationError as exc:
            raise _refusal(exc, index if is_array else None) from None
        project_id, project = project_of(principal, event.subject, registry)
        at = event.time or received_at
        records = _records(meters.get(event.type, ()), event, (project_id, project), at, received_at)
        if records:
            metered.records.extend(records)
        else:
            metered.unmetered.append(
                EventEnvelope(
                    source=Source.CLOUDEVENTS,
                    delivery_id=cloudevent_identity(event.source, event.id),
                    event_type=event.type,
                    received_at=received_at,
                    payload=orjson.dumps(value).decode(),
                    project_id=project_id,
                    fields=EventFields(project=project),
                )
            )
    return metered


def _records(
    meters: Sequence[tuple[int, Meter]],
    event: CloudEventIn,
    owner: tuple[int | None, str | None],
    at: datetime,
    received_at: datetime,
) -> list[UsageRecord]:
    project_id, project = owner
    records = []
    for meter_id, each in meters:
        amount = meter_amount(each, event.data)
        if amount is None:  # the value the meter sums is missing or not a number
            continue
        records.append(
            UsageRecord(
                project_id=project_id,
                project=project,
                usage_id=cloudevent_usage_id(meter_id, event.source, event.id),
                resource_type=each.resource_type,
                amount=amount,
                unit=each.unit,
                recorded_at=at,
                received_at=received_at,
                origin=UsageOrigin.CLOUDEVENTS,
                meter_id=meter_id,
                metadata=meter_groups(each, event.data),
            )
        )
    return records
