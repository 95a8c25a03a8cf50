"""``POST /v1/deployments``: operator token or project key; one object or an array, taken or refused whole."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

import orjson
from pydantic import BaseModel, ValidationError

from contracts import DeploymentIn, EventEnvelope, EventFields, Source
from producers.deliveries import Verified, require_media_type
from producers.errors import IngestError, invalid_json
from producers.keys import KeyRegistry, Principal, project_of

M = TypeVar("M", bound=BaseModel)

#: The most objects one /v1 request may carry.
MAX_BATCH = 1000
#: The token header: refused when repeated or not UTF-8 (see producers.deliveries.guard_headers).
GUARDED_HEADERS = ("authorization",)


def parse_items(headers: Mapping[str, str], raw: bytes) -> tuple[list[Any], bool]:
    """The request's objects, and whether they came as an array."""
    require_media_type(headers, "application/json")
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise invalid_json() from None
    if isinstance(value, dict):
        return [value], False
    if isinstance(value, list):
        if not value:
            raise IngestError(422, "validation_failed", "The array is empty.", errors=[])
        if len(value) > MAX_BATCH:
            raise IngestError(
                422, "validation_failed", f"An array may hold at most {MAX_BATCH} objects.", errors=[]
            )
        return value, True
    raise invalid_json("The body is JSON but neither an object nor an array, so it")


def validation_error(exc_by_index: list[tuple[int | None, ValidationError]]) -> IngestError:
    """A 422 that lists every failing field, prefixed with its array index for batches."""
    errors = []
    for index, exc in exc_by_index:
        for err in exc.errors(include_url=False, include_input=False):
            loc = ".".join(str(part) for part in err["loc"])
            prefix = f"[{index}]" if index is not None else ""
            field = f"{prefix}.{loc}" if prefix and loc else prefix or loc or "(body)"
            errors.append({"field": field, "message": err["msg"]})
    first = errors[0]
    return IngestError(
        422,
        "validation_failed",
        f"{len(errors)} field(s) failed validation, first {first['field']}: {first['message']}.",
        errors=errors,
    )


def verify(
    headers: Mapping[str, str],
    raw: bytes,
    principal: Principal,
    received_at: datetime,
    registry: KeyRegistry | None = None,
) -> Verified:
    """Validate an authenticated deployment request; every object becomes one event.

    Each object's project must be the key's own (403 ``forbidden_project`` otherwise, for the
    whole request); under the operator token it may name any project, or none.
    """
    items, is_array = parse_items(headers, raw)
    failures: list[tuple[int | None, ValidationError]] = []
    events = []
    for index, item in enumerate(items):
        try:
            deployment = DeploymentIn.model_validate(item)
        except ValidationError as exc:
            failures.append((index if is_array else None, exc))
            continue
        project_id, project = project_of(principal, deployment.project, registry)
        events.append(
            EventEnvelope(
                source=Source.DEPLOYMENT,
                delivery_id=deployment.id,
                event_type="deployment",
                action=deployment.status.value,
                received_at=received_at,
                payload=raw.decode() if not is_array else orjson.dumps(item).decode(),
                project_id=project_id,
                fields=EventFields(
                    project=project,
                    service=deployment.service,
                    environment=deployment.environment,
                    version=deployment.version,
                    status=deployment.status.value,
                ),
            )
        )
    if failures:
        raise validation_error(failures)
    return Verified(events=events)


@dataclass(frozen=True)
class Owned(Generic[M]):
    """One validated ``/v1`` object, its position, and the project it belongs to."""

    index: int
    item: dict[str, Any]
    body: M
    project_id: int | None
    project: str | None


def owned_objects(
    headers: Mapping[str, str],
    raw: bytes,
    model: type[M],
    principal: Principal,
    registry: KeyRegistry | None,
    *,
    project_required: bool,
) -> list[Owned[M]]:
    """The objects of a ``/v1`` request, each validated and owned, or the refusal of the whole request.

    Every object is validated (a 422 lists every failing field of every object); each names its
    project by the rules of :func:`producers.keys.project_of` (403 ``forbidden_project``); with
    ``project_required`` the operator token must name one (a key implies its own).
    """
    items, is_array = parse_items(headers, raw)
    failures: list[tuple[int | None, ValidationError]] = []
    owned: list[Owned[M]] = []
    for index, item in enumerate(items):
        try:
            body = model.model_validate(item)
        except ValidationError as exc:
            failures.append((index if is_array else None, exc))
            continue
        project_id, project = project_of(principal, getattr(body, "project", None), registry)
        if project_required and project is None:
            raise IngestError(
                422,
                "validation_failed",
                "project is required with the operator token.",
                errors=[
                    {"field": f"[{index}].project" if is_array else "project", "message": "Field required"}
                ],
            )
        owned.append(Owned(index, item, body, project_id, project))
    if failures:
        raise validation_error(failures)
    return owned
