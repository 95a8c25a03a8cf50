"""The OpenAPI document served at ``/openapi.json``, built from the ``contracts`` models."""

from __future__ import annotations

import functools
from typing import Any

from contracts import DeploymentIn
from hookyard import __version__

_ERROR = {
    "type": "object",
    "required": ["error", "detail"],
    "properties": {"error": {"type": "string"}, "detail": {"type": "string"}},
}


def _responses(*codes: int) -> dict[str, Any]:
    described = {
        200: "Slack url_verification challenge",
        202: "Accepted: RabbitMQ confirmed the persistent message",
        400: "Not valid JSON, or a required header or field is missing",
        401: "Missing or wrong signature or token, stale timestamp, or no secret configured",
        413: "Body larger than HOOKYARD_MAX_BODY_BYTES",
        415: "Content type not taken by this endpoint",
        422: "A /v1 body failed its schema; `errors` lists each field",
        501: "Part of the contract, not built yet",
        503: "RabbitMQ did not confirm in time; Retry-After is set",
    }
    out: dict[str, Any] = {}
    for code in codes:
        schema: dict[str, Any] = (
            {"type": "object", "properties": {"delivery_id": {"type": "string"}}} if code == 202 else _ERROR
        )
        out[str(code)] = {"description": described[code], "content": {"application/json": {"schema": schema}}}
    return out


def _webhook(summary: str, header: str, *, extra: tuple[int, ...] = ()) -> dict[str, Any]:
    return {
        "post": {
            "summary": summary,
            "parameters": [{"name": header, "in": "header", "required": True, "schema": {"type": "string"}}],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"type": "object"}}},
            },
            "responses": _responses(202, *extra, 400, 401, 413, 415, 503),
        }
    }


@functools.cache
def openapi_document() -> dict[str, Any]:
    deployment = DeploymentIn.model_json_schema(ref_template="#/components/schemas/{model}")
    bearer: list[dict[str, list[str]]] = [{"ingestToken": []}]
    body = {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        {"$ref": "#/components/schemas/DeploymentIn"},
                        {"type": "array", "items": {"$ref": "#/components/schemas/DeploymentIn"}},
                    ]
                }
            }
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "Hookyard ingestion", "version": __version__},
        "paths": {
            "/webhooks/github": _webhook("GitHub webhook delivery", "X-Hub-Signature-256"),
            "/webhooks/slack": _webhook("Slack Events API request", "X-Slack-Signature", extra=(200,)),
            "/webhooks/linear": _webhook("Linear webhook", "Linear-Signature"),
            "/v1/deployments": {
                "post": {
                    "summary": "Deployment events, one object or an array accepted whole",
                    "security": bearer,
                    "requestBody": body,
                    "responses": _responses(202, 400, 401, 413, 415, 422, 503),
                }
            },
            **{
                path: {
                    "post": {
                        "summary": "Not built yet",
                        "security": bearer,
                        "responses": _responses(401, 501),
                    }
                }
                for path in ("/v1/heartbeats", "/v1/usage", "/v1/errors")
            },
        },
        "components": {
            "schemas": {"DeploymentIn": deployment},
            "securitySchemes": {"ingestToken": {"type": "http", "scheme": "bearer"}},
        },
    }
