"""The OpenAPI 3.1 document served at ``/openapi.json``, built from the ``contracts`` models.

Each endpoint is one ``Endpoint`` entry of ``ENDPOINTS``: its parameters, bodies and every answer it
can give. A new endpoint joins the document by adding an entry. Bodies and answers name pydantic
models directly (anywhere inside a JSON Schema dict); the builder turns them into
``#/components/schemas/...`` references and hoists every model, nested ones included, into
``components``, so no reference dangles. The answers every path can give because of the HTTP server
itself (``EDGE_ANSWERS``) are added to each operation by the builder.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import orjson
from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaMode, JsonSchemaValue, models_json_schema
from pydantic_core import core_schema

from contracts import DeploymentIn
from contracts.ingest import PROJECT_NAME, CommitIn, ErrorIn, HeartbeatIn, ReservationIn, UsageIn
from contracts.responses import (
    Accepted,
    AcceptedBatch,
    ErrorBody,
    Health,
    NotReady,
    Ready,
    Reservation,
    SettledReservation,
    SlackChallenge,
    ValidationFailed,
)
from contracts.usage import CloudEventIn
from contracts.usage_summary import UsageSummary
from hookyard import __version__

#: A JSON Schema, in which any value may be a pydantic model class standing for its reference.
SchemaLike = type[BaseModel] | dict[str, Any]

_REF_TEMPLATE = "#/components/schemas/{model}"

#: A character that pydantic's whitespace stripping (Unicode White_Space) keeps.
_NOT_WHITESPACE = "[^\\t-\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]"


class _ContractJsonSchema(GenerateJsonSchema):
    """pydantic's JSON Schema, saying also what stripping means for a string that must not be empty.

    Under ``str_strip_whitespace`` a ``min_length`` counts what is left after stripping, so
    ``" "`` is refused though pydantic's schema alone would call it valid.
    """

    def str_schema(self, schema: core_schema.StringSchema) -> JsonSchemaValue:
        json_schema = super().str_schema(schema)
        strips = schema.get("strip_whitespace", self._config.str_strip_whitespace)
        if strips and schema.get("min_length", 0) >= 1 and "pattern" not in json_schema:
            json_schema["pattern"] = _NOT_WHITESPACE
        return json_schema


@dataclass(frozen=True)
class Param:
    """A request parameter (a header today; path and query parameters the same way)."""

    name: str
    description: str
    location: Literal["header", "path", "query"] = "header"
    required: bool = False
    schema: dict[str, Any] = field(default_factory=lambda: {"type": "string"})


@dataclass(frozen=True)
class Header:
    """A response header."""

    description: str
    schema: dict[str, Any] = field(default_factory=lambda: {"type": "string"})
    required: bool = True


@dataclass(frozen=True)
class Answer:
    """One status an operation can answer with, its body and its headers."""

    description: str
    #: None: an answer without a body (204).
    body: SchemaLike | None = ErrorBody
    media_type: str = "application/json"
    headers: Mapping[str, Header] = field(default_factory=dict)


@dataclass(frozen=True)
class Endpoint:
    """One operation: a method on a path, and everything it takes and answers."""

    method: str
    path: str
    operation_id: str
    summary: str
    tag: str
    answers: Mapping[int, Answer]
    description: str = ""
    params: tuple[Param, ...] = ()
    #: Media type → schema of the request body; empty when the operation reads no body.
    bodies: Mapping[str, SchemaLike] = field(default_factory=dict)
    #: Names of ``SECURITY_SCHEMES`` any one of which authenticates the request.
    security: tuple[str, ...] = ()


SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "ingestToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "`Authorization: Bearer <HOOKYARD_INGEST_TOKEN>`, the operator's token: every token "
        "of the rotation list is accepted, for any project.",
    },
    "projectKey": {
        "type": "http",
        "scheme": "bearer",
        "description": "`Authorization: Bearer <project key>` (`hookyard keys create`): its own project "
        "only, and only for the scopes it holds.",
    },
}

_RETRY_AFTER = Header("Seconds to wait before retrying.", {"type": "integer", "minimum": 0})

#: Answers of the HTTP server itself, before or around any route: possible on every path.
EDGE_ANSWERS: dict[int, Answer] = {
    400: Answer(
        "`invalid_request`: not valid HTTP/1.1 (framing, Content-Length, chunks, a cut-short request)."
    ),
    408: Answer("`request_timeout`: the headers or the body did not arrive in time (HOOKYARD_*_TIMEOUT)."),
    431: Answer("`headers_too_large`: request line and headers over HOOKYARD_MAX_HEADER_BYTES, or too many."),
    503: Answer(
        "`too_many_connections`: the process holds HOOKYARD_MAX_CONNECTIONS connections; this one is closed.",
        headers={"Retry-After": _RETRY_AFTER},
    ),
}


# -- answers shared by several endpoints ------------------------------------------------------------

_ACCEPTED = Answer(
    "Accepted: RabbitMQ confirmed the persistent message carrying the event. "
    "Redelivering the same delivery later stores it once.",
    Accepted,
)
_BROKER_UNAVAILABLE = Answer(
    "`broker_unavailable`: RabbitMQ did not confirm within HOOKYARD_CONFIRM_TIMEOUT, or is unreachable. "
    "The message may still have arrived; retrying is safe.",
    headers={"Retry-After": _RETRY_AFTER},
)
_TOO_LARGE = Answer("`payload_too_large`: the body is larger than HOOKYARD_MAX_BODY_BYTES (refused unread).")


def _unsupported(*media_types: str) -> Answer:
    return Answer(f"`unsupported_media_type`: this endpoint takes {' or '.join(media_types)} only.")


def _signature_refused(*extra: str) -> Answer:
    codes = ["`missing_signature`", "`invalid_signature`", *extra, "`secret_not_configured`"]
    return Answer(f"{', '.join(codes)}: the request is not signed with a configured secret.")


_TOKEN_REFUSED = Answer(
    "`missing_token`, `invalid_token`, `key_revoked` (a revoked key, or its project archived), or "
    "`secret_not_configured` (HOOKYARD_INGEST_TOKEN unset and the token is not a project key)."
)
_KEY_FORBIDDEN = Answer(
    "`forbidden_project`: a project key used for another project's data (the whole request is refused); "
    "`missing_scope`: a project key without this endpoint's scope."
)
_KEYS_UNAVAILABLE = (
    "`keys_unavailable`: this process has not loaded the project keys yet (PostgreSQL down since it "
    "started); retry later."
)
_AUTH_REPEATED = "`duplicate_header` / `invalid_header`: Authorization is repeated or not UTF-8."


def _webhook_answers(bad_request: str, *, extra: Mapping[int, Answer] | None = None) -> dict[int, Answer]:
    return {
        202: _ACCEPTED,
        **(extra or {}),
        400: Answer(
            f"{bad_request} `duplicate_header` / `invalid_header`: an authentication, identity or timestamp "
            "header is repeated or not UTF-8."
        ),
        413: _TOO_LARGE,
        503: _BROKER_UNAVAILABLE,
    }


# -- request bodies of the senders (their formats, not ours: every field but the ones read is free) --

_JSON_OBJECT = {"type": "object", "description": "Any JSON object; the fields read are described."}

_GITHUB_DELIVERY = {
    **_JSON_OBJECT,
    "properties": {
        "action": {"maxLength": 255, "description": "Stored as the event's action when it is a string."},
        "repository": {"description": "`repository.full_name` is lifted out."},
        "sender": {"description": "`sender.login` is lifted out."},
    },
}
_GITHUB_FORM = {
    "type": "object",
    "required": ["payload"],
    "properties": {
        "payload": {
            "type": "string",
            "contentMediaType": "application/json",
            "description": "The JSON delivery, exactly as GitHub sends it with `Content type: "
            "application/x-www-form-urlencoded`. A payload that is not a JSON object is 400.",
        }
    },
}
_SLACK_URL_VERIFICATION = {
    "type": "object",
    "required": ["type", "challenge"],
    "properties": {
        "type": {"const": "url_verification"},
        "challenge": {"type": "string"},
        "token": {"type": "string"},
    },
}
_SLACK_EVENT = {
    **_JSON_OBJECT,
    "properties": {
        "type": {"not": {"const": "url_verification"}, "description": "`event_callback`, usually."},
        "api_app_id": {"description": "Scopes `event_id`: the delivery id is `{api_app_id}:{event_id}`."},
        "event_id": {"description": "The event's identity."},
        "team_id": {"description": "Lifted out, with `event.channel` and `event.user`."},
        "event": {"description": "`event.type` is stored as the event type, `event.subtype` as its action."},
    },
}
_SLACK_REQUEST = {
    "description": "An Events API request. `url_verification` is answered 200 with its challenge and "
    "published nowhere; anything else is an event, identified by `api_app_id` and `event_id` (or the "
    "SHA-256 of the body without them).",
    "anyOf": [_SLACK_URL_VERIFICATION, _SLACK_EVENT],
    "examples": [
        {"type": "url_verification", "token": "Jhj5dZrVaK7ZwHHjRyZWjbDl", "challenge": "3eZbrw1aBm2rZgRNFdx"},
        {
            "type": "event_callback",
            "api_app_id": "A0HOOKYARD",
            "event_id": "Ev0PV52K21",
            "team_id": "T0001",
            "event": {"type": "message", "channel": "C2147483705", "user": "U2147483697", "text": "Hi"},
        },
    ],
}
_LINEAR_WEBHOOK = {
    **_JSON_OBJECT,
    "required": ["webhookTimestamp"],
    "properties": {
        "webhookTimestamp": {
            "type": "number",
            "description": "Milliseconds since the epoch; refused (401) more than 60 s away from now.",
        },
        "type": {"maxLength": 255, "description": "The entity type, stored as the event type."},
        "action": {"maxLength": 255, "description": "Stored as the event's action."},
        "data": {"description": "`data.id`, `data.teamId` and `data.userId` are lifted out."},
    },
}


#: The pattern of a string without control characters (PostgreSQL text holds no NUL), given the
#: least and the most characters it has by ``format``.
_NO_CONTROL = "^[^\\u0000-\\u001f\\u007f]{{{},{}}}$"

#: A printable ASCII identity of 1 to 255 characters (UTF-8 is accepted too; an empty one is missing).
_IDENTITY: dict[str, Any] = {"minLength": 1, "maxLength": 255, "pattern": "^[!-~]([ -~]*[!-~])?$"}


def _header(name: str, description: str, *, required: bool = False, **schema: Any) -> Param:
    return Param(name, description, required=required, schema={"type": "string", **schema})


def _v1_endpoint(
    path: str, operation_id: str, summary: str, model: type[BaseModel], description: str
) -> Endpoint:
    """A ``/v1`` endpoint: one object or an array of them, the operator token or a project key."""
    return Endpoint(
        "POST",
        path,
        operation_id,
        summary,
        "v1",
        description=description,
        security=("ingestToken", "projectKey"),
        bodies={
            "application/json": {
                "oneOf": [model, {"type": "array", "items": model, "minItems": 1, "maxItems": 1000}],
                "description": "One object, or an array of 1 to 1,000 accepted or refused whole.",
            }
        },
        answers={
            202: Answer(
                _ACCEPTED.description
                + " One object answers `delivery_id`; several, `delivery_ids` in order.",
                {"anyOf": [Accepted, AcceptedBatch]},
            ),
            400: Answer(
                f"`invalid_json`: not JSON, or JSON but neither an object nor an array. {_AUTH_REPEATED}"
            ),
            401: _TOKEN_REFUSED,
            403: _KEY_FORBIDDEN,
            413: _TOO_LARGE,
            415: _unsupported("application/json"),
            422: Answer(
                "`validation_failed`: an object fails its schema, or the array is empty or longer than "
                "1,000. Nothing of the request is kept.",
                ValidationFailed,
            ),
            503: Answer(
                f"{_BROKER_UNAVAILABLE.description} Or {_KEYS_UNAVAILABLE}",
                headers=_BROKER_UNAVAILABLE.headers,
            ),
        },
    )


_PING_UUID = Param(
    "a", "The check's uuid, or a project key (then `b` is the slug).", "path", True, {"type": "string"}
)
_PING_KEY = Param("a", "A project key holding the heartbeats scope.", "path", True, {"type": "string"})
_PING_SECOND = Param(
    "b",
    "After a uuid: `start`, `fail`, `log` or an exit status; after a key: the check's slug.",
    "path",
    True,
    {"type": "string"},
)
_PING_SUFFIX = Param("c", "`start`, `fail`, `log` or an exit status 0-255.", "path", True, {"type": "string"})

# -- budget reservations: answered from PostgreSQL, not through the broker ------------------------

_RESERVATION_ID = Param(
    "reservation_id",
    "The reservation's id, the `reservation_id` of its 201 (anything else is 404).",
    "path",
    True,
    {"type": "string", "format": "uuid"},
)
_RESERVATION_UNKNOWN = Answer("`not_found`: there is no reservation with this id.")
_RESERVATION_FORBIDDEN = Answer(
    "`forbidden_project`: a project key used on another project's reservation; `missing_scope`: a "
    "project key without the budgets scope."
)
_DATABASE_UNAVAILABLE = Answer(
    "`database_unavailable`: PostgreSQL did not answer. Reservations are decided by the database, "
    "unlike ingestion, so they need it; retrying is safe (a reservation is idempotent on its `id`, a "
    f"commit or release happens once). Or {_KEYS_UNAVAILABLE}",
    headers={"Retry-After": _RETRY_AFTER},
)
_RESERVATION_BODY_REFUSED: dict[int, Answer] = {
    400: Answer(f"`invalid_json`: not JSON, or JSON but not an object. {_AUTH_REPEATED}"),
    413: _TOO_LARGE,
    415: _unsupported("application/json"),
}

_RESERVATION_ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        "POST",
        "/v1/budgets/reservations",
        "reserveBudget",
        "Reserve an amount of a budget before spending it",
        "budgets",
        description="Holds `amount` (in the budget's unit) of the project's budget for `resource_type` "
        "in the period of now, for `ttl_seconds`: commit it with what was spent, or release it; unsettled, "
        "it expires and frees the amount. On a hard budget used + reserved never exceeds the allocation "
        "through reservations, however many run at once; a soft budget grants past it and records the "
        "overrun. `id` is the idempotency key within the project: reserving again with it answers the "
        "first reservation with the remaining of now. `project` is required with the operator token.",
        security=("ingestToken", "projectKey"),
        bodies={"application/json": ReservationIn},
        answers={
            201: Answer("Reserved (or reserved before with this `id`).", Reservation),
            **_RESERVATION_BODY_REFUSED,
            401: _TOKEN_REFUSED,
            403: _KEY_FORBIDDEN,
            409: Answer(
                "`budget_exceeded`: a hard budget cannot cover `amount`; `remaining` (a decimal string) "
                "says what it can. `no_budget`: the project has no budget for this resource type now "
                "(none set, or its last period ended without auto-reset). Nothing is held."
            ),
            422: Answer(
                "`validation_failed`: the object fails its schema, or has no `project` under the "
                "operator token.",
                ValidationFailed,
            ),
            503: _DATABASE_UNAVAILABLE,
        },
    ),
    Endpoint(
        "POST",
        "/v1/budgets/reservations/{reservation_id}/commit",
        "commitReservation",
        "Turn a reservation into usage",
        "budgets",
        description="Frees the reserved amount and records `amount` as usage of the budget's period "
        "(a resource_usage row of origin `reservation`, counted once), crossing thresholds as any usage "
        "does. Less than was reserved frees the rest; more is accepted while the budget can cover the "
        "difference. Committing again answers the first commit.",
        security=("ingestToken", "projectKey"),
        params=(_RESERVATION_ID,),
        bodies={"application/json": CommitIn},
        answers={
            200: Answer("Committed, now or by an earlier request.", SettledReservation),
            **_RESERVATION_BODY_REFUSED,
            401: _TOKEN_REFUSED,
            403: _RESERVATION_FORBIDDEN,
            404: _RESERVATION_UNKNOWN,
            409: Answer(
                "`reservation_closed`: it was released or expired (`state` says which), so nothing is "
                "committed. `budget_exceeded`: `amount` is more than was reserved and a hard budget "
                "cannot cover the difference (`remaining`); the reservation stays held."
            ),
            422: Answer("`validation_failed`: the object fails its schema.", ValidationFailed),
            503: _DATABASE_UNAVAILABLE,
        },
    ),
    Endpoint(
        "POST",
        "/v1/budgets/reservations/{reservation_id}/release",
        "releaseReservation",
        "Free a reservation unspent",
        "budgets",
        description="Frees the reserved amount; releasing again answers the same. A reservation that "
        "expired is answered with `state` `expired`: its amount is free either way. The body is not read.",
        security=("ingestToken", "projectKey"),
        params=(_RESERVATION_ID,),
        answers={
            200: Answer("Released (now or before) or expired.", SettledReservation),
            400: Answer(_AUTH_REPEATED),
            401: _TOKEN_REFUSED,
            403: _RESERVATION_FORBIDDEN,
            404: _RESERVATION_UNKNOWN,
            409: Answer("`reservation_closed`: it was committed; there is nothing to free."),
            503: _DATABASE_UNAVAILABLE,
        },
    ),
)


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        "POST",
        "/webhooks/github",
        "receiveGithubWebhook",
        "A GitHub webhook delivery, JSON or form-encoded",
        "webhooks",
        params=(
            _header(
                "X-Hub-Signature-256",
                "`sha256=<hex HMAC-SHA256 of the raw body>` with GITHUB_WEBHOOK_SECRET.",
                required=True,
                pattern="^sha256=[0-9a-fA-F]{64}$",
            ),
            _header("X-GitHub-Event", "The event type, stored as such.", required=True, **_IDENTITY),
            _header("X-GitHub-Delivery", "The delivery's identity.", required=True, **_IDENTITY),
        ),
        bodies={"application/json": _GITHUB_DELIVERY, "application/x-www-form-urlencoded": _GITHUB_FORM},
        answers=_webhook_answers(
            "`invalid_json`, `invalid_form`, `missing_header` (X-GitHub-Event, X-GitHub-Delivery), "
            "`missing_field` (`payload` of a form), `invalid_field` (an identity over 255 characters),"
        )
        | {
            401: _signature_refused(),
            415: _unsupported("application/json", "application/x-www-form-urlencoded"),
        },
    ),
    Endpoint(
        "POST",
        "/webhooks/slack",
        "receiveSlackEvent",
        "A Slack Events API request",
        "webhooks",
        params=(
            _header(
                "X-Slack-Signature",
                '`v0=<hex HMAC-SHA256 of "v0:{X-Slack-Request-Timestamp}:{raw body}">` with '
                "SLACK_SIGNING_SECRET.",
                required=True,
                pattern="^v0=[0-9a-fA-F]{64}$",
            ),
            _header(
                "X-Slack-Request-Timestamp",
                "Unix seconds; refused (401) more than 300 s away from now.",
                required=True,
                pattern="^[0-9]{1,20}$",
            ),
            _header("X-Slack-Retry-Num", "Slack's retry count; logged, the event id makes it a duplicate."),
            _header("X-Slack-Retry-Reason", "Why Slack retried; logged."),
        ),
        bodies={"application/json": _SLACK_REQUEST},
        answers=_webhook_answers(
            "`invalid_json`, `invalid_field` (an identity over 255 characters),",
            extra={
                200: Answer("Slack `url_verification`: its challenge, answered directly.", SlackChallenge)
            },
        )
        | {401: _signature_refused("`stale_timestamp`"), 415: _unsupported("application/json")},
    ),
    Endpoint(
        "POST",
        "/webhooks/linear",
        "receiveLinearWebhook",
        "A Linear webhook",
        "webhooks",
        params=(
            _header(
                "Linear-Signature",
                "`<hex HMAC-SHA256 of the raw body>` with LINEAR_WEBHOOK_SECRET.",
                required=True,
                pattern="^[0-9a-fA-F]{64}$",
            ),
            _header(
                "Linear-Delivery",
                "The delivery's identity; without it, the SHA-256 of the body.",
                **_IDENTITY,
            ),
            _header("Linear-Event", "The entity type, when the body has no `type`.", maxLength=255),
        ),
        bodies={"application/json": _LINEAR_WEBHOOK},
        answers=_webhook_answers(
            "`invalid_json`, `missing_field` / `invalid_field` (`webhookTimestamp`, or an identity over 255 "
            "characters),"
        )
        | {401: _signature_refused("`stale_timestamp`"), 415: _unsupported("application/json")},
    ),
    _v1_endpoint(
        "/v1/deployments",
        "ingestDeployments",
        "Deployment events from a pipeline",
        DeploymentIn,
        "The body's `id` is the client's idempotency key: sending it again stores nothing new.",
    ),
    _v1_endpoint(
        "/v1/errors",
        "ingestErrors",
        "Error reports from a service, grouped into patterns",
        ErrorIn,
        "Each object is one report; its `id` is the idempotency key within its project, so sending it "
        "again counts nothing twice. `project` is required with the operator token. Grouping follows "
        "`fingerprint`, else the exception type and in-app frames, else the normalized message.",
    ),
    _v1_endpoint(
        "/v1/heartbeats",
        "ingestHeartbeats",
        "Heartbeats of service instances",
        HeartbeatIn,
        "Each object reports one instance (`host`, `pid`, `port`) of a service: the check is the "
        "service's slug in the project (created with a 1-day period and 1-hour grace on first sight). "
        "`id` is the idempotency key; reports apply in the order of `sent_at`, so a late one never moves "
        "a status backwards. `project` is required with the operator token.",
    ),
    *_RESERVATION_ENDPOINTS,
    *(
        Endpoint(
            method,
            path,
            f"ping{method.title()}{operation}",
            summary,
            "pings",
            description="Healthchecks.io's ping URL. The optional last part is `start`, `fail`, `log` or an "
            "exit status 0-255 (0 is success). `?rid=<uuid>` pairs a start with its end; `?create=1` on a "
            "slug URL creates a missing check (201). A POST body is kept up to 10,000 bytes. Answers are "
            "plain text.",
            params=params,
            bodies={"text/plain": {"type": "string"}} if method == "POST" else {},
            answers={
                200: Answer("`OK`", {"type": "string"}, media_type="text/plain"),
                201: Answer(
                    "`Created`: `?create=1` made the check.", {"type": "string"}, media_type="text/plain"
                ),
                400: Answer(
                    "`invalid url format`: an exit status over 255, a bad slug or rid.",
                    {"type": "string"},
                    media_type="text/plain",
                ),
                **(
                    {
                        413: Answer(
                            "The body is larger than HOOKYARD_MAX_BODY_BYTES.",
                            {"type": "string"},
                            media_type="text/plain",
                        )
                    }
                    if method == "POST"
                    else {}
                ),
                404: Answer(
                    "`not found`: no such check (without `?create=1`), or not a live project key.",
                    {"type": "string"},
                    media_type="text/plain",
                ),
                503: Answer(
                    "RabbitMQ did not confirm, or `?create=1` could not reach PostgreSQL.",
                    {"type": "string"},
                    media_type="text/plain",
                    headers={"Retry-After": _RETRY_AFTER},
                ),
            },
        )
        for method in ("GET", "HEAD", "POST")
        for operation, path, summary, params in (
            ("ByUuid", "/ping/{a}", "Ping a check by its uuid", (_PING_UUID,)),
            (
                "ByUuidWithSuffix",
                "/ping/{a}/{b}",
                "Ping a check by uuid with a suffix, or by key and slug",
                (_PING_UUID, _PING_SECOND),
            ),
            (
                "ByKeyWithSuffix",
                "/ping/{a}/{b}/{c}",
                "Ping a check by key and slug with a suffix",
                (_PING_KEY, _PING_SECOND, _PING_SUFFIX),
            ),
        )
    ),
    *(
        Endpoint(
            "POST",
            f"/api/{{project_id}}/{kind}/",
            operation_id,
            summary,
            "sentry",
            description=description
            + " Authenticated by the DSN's key: `X-Sentry-Auth: Sentry sentry_key=<key>, ...` or the "
            "`sentry_key` query parameter. `Content-Encoding` may be gzip, deflate or br; "
            "HOOKYARD_MAX_BODY_BYTES bounds the decoded size too.",
            params=(
                Param("project_id", "The project's id, as in its DSN.", "path", True, {"type": "integer"}),
                Param("sentry_key", "The DSN's public key (instead of X-Sentry-Auth).", "query"),
                _header("X-Sentry-Auth", "`Sentry sentry_key=<project key>, sentry_version=7, ...`"),
                _header("Content-Encoding", "gzip, deflate, br or identity."),
            ),
            bodies={media_type: {"type": "string", "description": description} for media_type in media_types},
            answers={
                200: Answer(
                    "Accepted once RabbitMQ confirmed every message the request became: "
                    '`{"id": <event id>}`, or `{}` for an envelope without an event.',
                    {"type": "object", "properties": {"id": {"type": "string"}}},
                ),
                400: Answer(
                    "`invalid_envelope` (a header or item not JSON, an item shorter or longer than its "
                    "`length`), `invalid_encoding` (corrupt or truncated compression), `invalid_check_in`, "
                    "`invalid_field`; nothing of the request is kept. Or `duplicate_header` / "
                    "`invalid_header`."
                ),
                401: Answer("`missing_key`, `invalid_key`, `key_revoked`: not a live project key."),
                404: Answer("`not_found`: the project id in the path is not a number."),
                403: Answer(
                    "`forbidden_project`: the key belongs to another project; "
                    "`missing_scope`: no errors scope."
                ),
                413: Answer(
                    "`payload_too_large`: the body, or its decoded form, is over HOOKYARD_MAX_BODY_BYTES."
                ),
                415: Answer("`unsupported_encoding`: a Content-Encoding other than gzip, deflate or br."),
                503: Answer(
                    f"{_BROKER_UNAVAILABLE.description} Or {_KEYS_UNAVAILABLE}",
                    headers=_BROKER_UNAVAILABLE.headers,
                ),
            },
        )
        for kind, operation_id, summary, description, media_types in (
            (
                "envelope",
                "sentryEnvelope",
                "A Sentry envelope",
                "A header line, then items (a header line with `type` and usually `length`, then the "
                "payload). "
                "`event` items are error reports, `check_in` items are kept as events (source `sentry`); "
                "other item types are acknowledged, counted and not stored.",
                ("application/x-sentry-envelope", "application/octet-stream"),
            ),
            (
                "store",
                "sentryStore",
                "A Sentry event (the legacy endpoint)",
                "One Sentry event as JSON.",
                ("application/json",),
            ),
        )
    ),
    _v1_endpoint(
        "/v1/usage",
        "ingestUsage",
        "Usage records of a project",
        UsageIn,
        "Each object is one usage record; its `id` is the idempotency key within its project, so "
        "sending it again stores and counts nothing twice. `cost_cad` is given, or computed from "
        "`quantity x unit_cost` at the CAD rate in force on `occurred_at` (`hookyard rates set`). "
        "`project` is required with the operator token.",
    ),
    Endpoint(
        "POST",
        "/api/v1/events",
        "ingestCloudEvents",
        "Usage as CloudEvents (OpenMeter's form)",
        "v1",
        description="One CloudEvent (`application/cloudevents+json`), a batch "
        "(`application/cloudevents-batch+json`), or either as `application/json`; `charset=utf-8` "
        "allowed. `subject` is the project's slug (or org/slug). Each meter whose event type matches "
        "makes one usage record; an event no meter takes is kept as an event (source `cloudevents`). "
        "(`source`, `id`) is an event's identity: redelivered, it counts once.",
        security=("ingestToken", "projectKey"),
        bodies={
            media_type: {
                "oneOf": [
                    CloudEventIn,
                    {"type": "array", "items": CloudEventIn, "minItems": 1, "maxItems": 1000},
                ]
            }
            for media_type in (
                "application/cloudevents+json",
                "application/cloudevents-batch+json",
                "application/json",
            )
        },
        answers={
            204: Answer("Accepted once RabbitMQ confirmed every message the events became.", None),
            400: Answer(
                "`invalid_json`, or `invalid_cloudevent`: a required attribute (`specversion` 1.0, `id`, "
                f"`source`, `type`, `subject`) is missing or invalid. {_AUTH_REPEATED}"
            ),
            401: _TOKEN_REFUSED,
            403: _KEY_FORBIDDEN,
            413: _TOO_LARGE,
            415: _unsupported(
                "application/cloudevents+json", "application/cloudevents-batch+json", "application/json"
            ),
            422: Answer(
                "`validation_failed`: an attribute is malformed, or the batch is empty or over 1,000.",
                ValidationFailed,
            ),
            503: Answer(
                f"{_BROKER_UNAVAILABLE.description} Or {_KEYS_UNAVAILABLE}",
                headers=_BROKER_UNAVAILABLE.headers,
            ),
        },
    ),
    Endpoint(
        "GET",
        "/healthz",
        "health",
        "Liveness: 200 while the process runs",
        "operations",
        answers={200: Answer("The process runs.", Health)},
    ),
    Endpoint(
        "GET",
        "/readyz",
        "readiness",
        "Readiness: the broker and the database answer",
        "operations",
        answers={
            200: Answer("RabbitMQ is connected and PostgreSQL answers.", Ready),
            503: Answer("`not_ready`: `failing` names what does not answer.", NotReady),
        },
    ),
    Endpoint(
        "GET",
        "/metrics",
        "metrics",
        "Prometheus metrics of this web process",
        "operations",
        answers={
            200: Answer("The Prometheus text exposition format.", {"type": "string"}, media_type="text/plain")
        },
    ),
    Endpoint(
        "GET",
        "/openapi.json",
        "openapi",
        "This document",
        "operations",
        answers={
            200: Answer(
                "The OpenAPI 3.1 document.",
                {"type": "object", "required": ["openapi", "info", "paths"]},
            )
        },
    ),
    Endpoint(
        "GET",
        "/v1/usage/summary",
        "usageSummary",
        "A project's usage totals per hour, day or month",
        "v1",
        description="Totals over `[from, to)` per window (UTC), resource type and unit, and with "
        "`group_by` per value of that metadata key. Day and month totals of whole days before today "
        "come from the summary the scheduler refreshes every HOOKYARD_SUMMARY_REFRESH_INTERVAL "
        "seconds, so a record stored late for an earlier day joins them within that time; today's "
        "totals, hour windows and `group_by` are always current. Each parameter may be given once; "
        "any other parameter is refused.",
        security=("ingestToken", "projectKey"),
        params=(
            Param(
                "project",
                "Project slug (or org/slug): required with the operator token; with a project key, "
                "omitted or the key's own project.",
                "query",
                schema={"type": "string", "pattern": PROJECT_NAME},
            ),
            Param(
                "resource_type",
                "Only this resource type [default: every type].",
                "query",
                schema={"type": "string", "pattern": _NO_CONTROL.format(1, 255)},
            ),
            Param(
                "from",
                "The range's start, included: RFC 3339 with an offset (send `+` as `%2B`) "
                "[default: 24 hours before `to`]. Must be before `to`.",
                "query",
                schema={"type": "string", "format": "date-time"},
            ),
            Param(
                "to",
                "The range's end, excluded: RFC 3339 with an offset [default: now].",
                "query",
                schema={"type": "string", "format": "date-time"},
            ),
            Param(
                "window",
                "The totals' windows, in UTC.",
                "query",
                required=True,
                schema={"type": "string", "enum": ["hour", "day", "month"]},
            ),
            Param(
                "group_by",
                "A `metadata` key (a meter's group-by name): one total per value of it.",
                "query",
                schema={"type": "string", "pattern": _NO_CONTROL.format(1, 64)},
            ),
        ),
        answers={
            200: Answer("The totals; amounts and costs are exact decimal strings.", UsageSummary),
            400: Answer(
                "`missing_parameter`: no `project` with the operator token; `duplicate_parameter`: a "
                f"parameter given twice; `invalid_query`: the query string is not UTF-8. {_AUTH_REPEATED}"
            ),
            401: _TOKEN_REFUSED,
            403: Answer(
                "`forbidden_project`: a project key asking for another project; "
                "`missing_scope`: a project key without the usage scope."
            ),
            404: Answer("`unknown_project`: the operator token named a project that does not exist."),
            422: Answer(
                "`validation_failed`: a parameter that does not parse, an unknown parameter, no "
                "`window`, or `from` not before `to`, each listed in `errors`; `too_many_totals`: more "
                "than 10,000 totals (ask for a shorter range or a wider window).",
                {"anyOf": [ValidationFailed, ErrorBody]},
            ),
            503: Answer(
                "`database_unavailable`: PostgreSQL did not answer; `summary_timeout`: the summary took "
                f"longer than 10 s. Or {_KEYS_UNAVAILABLE}",
                headers={"Retry-After": _RETRY_AFTER},
            ),
        },
    ),
)

#: Answers of the router, to requests that reach no operation (``components.responses``).
ROUTER_ANSWERS: dict[str, Answer] = {
    "NotFound": Answer("`not_found` (404): nothing is served at this path."),
    "MethodNotAllowed": Answer(
        "`method_not_allowed` (405): the path is served, under other methods.",
        headers={"Allow": Header("The methods the path takes, comma-separated.")},
    ),
}

#: What each tag of the operations means.
TAGS: dict[str, str] = {
    "webhooks": "Signed deliveries of the senders, verified over the raw body",
    "v1": "Hookyard's own event API, with a bearer token",
    "sentry": "The Sentry protocol: an unmodified Sentry SDK, given a project's DSN",
    "pings": "Healthchecks.io's ping URLs: a cron job's curl one-liner works unchanged",
    "budgets": "Reservations of budget amounts, answered from PostgreSQL before the work spends",
    "operations": "Health, readiness, metrics and this document",
}

_INFO_DESCRIPTION = """\
Signed webhooks and `/v1` events in; `202` only once RabbitMQ has confirmed the message.

Every error body is JSON: `{"error": "<stable code>", "detail": "<one human sentence>"}`, sometimes with
more fields. Besides the answers listed per operation, a path that is not served answers `404`
`not_found`, and a served path asked with another method answers `405` `method_not_allowed` with an
`Allow` header naming its methods (`components.responses`)."""


def _merge(own: Answer, edge: Answer) -> Answer:
    """One status answered by the route and by the server: either body, and the headers of both."""
    headers = {
        name: replace(header, required=header.required and name in own.headers and name in edge.headers)
        for name, header in {**edge.headers, **own.headers}.items()
    }
    return Answer(
        f"{own.description} {edge.description}",
        own.body if own.body is edge.body else {"anyOf": [own.body, edge.body]},
        own.media_type,
        headers,
    )


def build_document(endpoints: Iterable[Endpoint]) -> dict[str, Any]:
    """The OpenAPI document of ``endpoints``, every model they name hoisted into ``components``."""
    endpoints = tuple(endpoints)
    used: dict[tuple[type[BaseModel], JsonSchemaMode], None] = {}

    def collect(value: Any, mode: JsonSchemaMode) -> None:
        if isinstance(value, type) and issubclass(value, BaseModel):
            used[(value, mode)] = None
        elif isinstance(value, dict):
            for item in value.values():
                collect(item, mode)
        elif isinstance(value, list):
            for item in value:
                collect(item, mode)

    for endpoint in endpoints:
        for body in endpoint.bodies.values():
            collect(body, "validation")
        for given in (*endpoint.answers.values(), *EDGE_ANSWERS.values(), *ROUTER_ANSWERS.values()):
            collect(given.body, "serialization")

    refs, definitions = models_json_schema(
        list(used), ref_template=_REF_TEMPLATE, schema_generator=_ContractJsonSchema
    )

    def resolve(value: Any, mode: JsonSchemaMode) -> Any:
        if isinstance(value, type) and issubclass(value, BaseModel):
            return refs[(value, mode)]
        if isinstance(value, dict):
            return {key: resolve(item, mode) for key, item in value.items()}
        if isinstance(value, list):
            return [resolve(item, mode) for item in value]
        return value

    def response(item: Answer) -> dict[str, Any]:
        out: dict[str, Any] = {"description": item.description}
        if item.body is not None:
            out["content"] = {item.media_type: {"schema": resolve(item.body, "serialization")}}
        if item.headers:
            out["headers"] = {
                name: {
                    "description": header.description,
                    "required": header.required,
                    "schema": header.schema,
                }
                for name, header in item.headers.items()
            }
        return out

    paths: dict[str, dict[str, Any]] = {}
    for endpoint in endpoints:
        operation: dict[str, Any] = {
            "operationId": endpoint.operation_id,
            "summary": endpoint.summary,
            "tags": [endpoint.tag],
        }
        if endpoint.description:
            operation["description"] = endpoint.description
        if endpoint.params:
            operation["parameters"] = [
                {
                    "name": param.name,
                    "in": param.location,
                    "description": param.description,
                    "required": param.required or param.location == "path",
                    "schema": param.schema,
                }
                for param in endpoint.params
            ]
        if endpoint.bodies:
            operation["requestBody"] = {
                "required": True,
                "content": {
                    media_type: {"schema": resolve(schema, "validation")}
                    for media_type, schema in endpoint.bodies.items()
                },
            }
        if endpoint.security:
            operation["security"] = [{name: []} for name in endpoint.security]
        answers = dict(endpoint.answers)
        for status, edge in EDGE_ANSWERS.items():
            own = answers.get(status)
            answers[status] = edge if own is None else _merge(own, edge)
        operation["responses"] = {str(status): response(answers[status]) for status in sorted(answers)}
        paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = operation

    return {
        "openapi": "3.1.0",
        "info": {"title": "Hookyard ingestion", "version": __version__, "description": _INFO_DESCRIPTION},
        "tags": [
            {"name": tag, "description": TAGS[tag]} if tag in TAGS else {"name": tag}
            for tag in dict.fromkeys(endpoint.tag for endpoint in endpoints)
        ],
        "paths": paths,
        "components": {
            "schemas": definitions.get("$defs", {}),
            "responses": {name: response(answer) for name, answer in ROUTER_ANSWERS.items()},
            "securitySchemes": SECURITY_SCHEMES,
        },
    }


@functools.cache
def openapi_json() -> bytes:
    """The document, serialized once per process: ``/openapi.json`` answers these bytes."""
    return orjson.dumps(build_document(ENDPOINTS))


def openapi_document() -> dict[str, Any]:
    """A fresh copy of the served document (callers may change it)."""
    parsed: dict[str, Any] = orjson.loads(openapi_json())
    return parsed
