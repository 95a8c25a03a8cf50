"""``/openapi.json``: valid OpenAPI 3.1, every route of the app and nothing else, every answer named."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from openapi_spec_validator import validate
from pydantic import BaseModel

from producers.app import create_app
from producers.openapi import (
    EDGE_ANSWERS,
    ENDPOINTS,
    Answer,
    Endpoint,
    Param,
    build_document,
    openapi_document,
    openapi_json,
)
from tests.conftest import make_settings


def _refs(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "$ref":
                yield item
            else:
                yield from _refs(item)
    elif isinstance(value, list):
        for item in value:
            yield from _refs(item)


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield method.upper(), path, operation


def test_the_document_is_valid_openapi_3_1() -> None:
    document = openapi_document()
    assert document["openapi"] == "3.1.0"
    validate(document)


def test_every_reference_points_to_a_component() -> None:
    document = openapi_document()
    refs = set(_refs(document))
    assert refs
    for ref in refs:
        section, name = ref.removeprefix("#/components/").split("/")
        assert name in document["components"][section], f"{ref} points nowhere"


def test_nested_models_are_components_of_their_own() -> None:
    deployment = openapi_document()["components"]["schemas"]["DeploymentIn"]
    assert deployment["properties"]["status"] == {"$ref": "#/components/schemas/DeploymentStatus"}
    assert "$defs" not in str(openapi_document())


def test_every_route_the_app_serves_is_in_the_document_and_nothing_else() -> None:
    app = create_app(make_settings("postgresql://nobody@127.0.0.1:1/none", "amqp://nobody@127.0.0.1:1/"))
    # The router writes a parameter's converter into its pattern (``{project_id:int}``); OpenAPI does not.
    served = {(method, re.sub(r"\{(\w+):\w+\}", r"{\1}", pattern)) for method, pattern in app.router.routes()}
    documented = {(method, path) for method, path, _ in _operations(openapi_document())}
    assert served == documented


def test_every_operation_names_the_answers_of_the_server_itself() -> None:
    for method, path, operation in _operations(openapi_document()):
        missing = {str(status) for status in EDGE_ANSWERS} - operation["responses"].keys()
        assert not missing, f"{method} {path} does not document {missing}"


def _is_ping(path: str) -> bool:
    """Ping URLs answer plain text and take any body, as Healthchecks' clients expect (SPEC)."""
    return path.startswith("/ping/")


def test_every_operation_that_reads_a_body_names_its_limits() -> None:
    for method, path, operation in _operations(openapi_document()):
        if "requestBody" in operation:
            limits = {"413"} if _is_ping(path) else {"413", "415"}
            assert limits <= operation["responses"].keys(), f"{method} {path}"


def test_every_refusal_is_the_json_error_body() -> None:
    error_bodies = {
        "#/components/schemas/ErrorBody",
        "#/components/schemas/ValidationFailed",
        "#/components/schemas/NotReady",
    }
    for method, path, operation in _operations(openapi_document()):
        for status, response in operation["responses"].items():
            if int(status) < 400 or (_is_ping(path) and "text/plain" in response["content"]):
                continue
            schema = response["content"]["application/json"]["schema"]
            assert set(_refs(schema)) <= error_bodies, f"{method} {path} {status}"
            assert set(_refs(schema)), f"{method} {path} {status}"


def test_every_answer_that_asks_for_a_retry_says_when() -> None:
    for method, path, operation in _operations(openapi_document()):
        if path == "/readyz":  # its own 503 is a state, not a refusal to retry
            continue
        assert operation["responses"]["503"]["headers"]["Retry-After"]["required"], f"{method} {path}"


def test_the_document_is_serialized_once() -> None:
    assert openapi_json() is openapi_json()


class _Received(BaseModel):
    id: str


def test_an_endpoint_with_path_parameters_joins_by_adding_an_entry() -> None:
    envelope = Endpoint(
        "POST",
        "/api/{project_id}/envelope/",
        "receiveSentryEnvelope",
        "A Sentry envelope",
        "sentry",
        params=(Param("project_id", "The project's id.", location="path", schema={"type": "integer"}),),
        bodies={"application/x-sentry-envelope": {"type": "string"}},
        answers={200: Answer("Stored.", _Received)},
    )
    document = build_document((*ENDPOINTS, envelope))
    validate(document)
    operation = document["paths"]["/api/{project_id}/envelope/"]["post"]
    assert operation["parameters"][0]["required"] is True
    assert operation["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/_Received"
    }
    assert {"400", "408", "431", "503"} <= operation["responses"].keys()


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda endpoint: f"{endpoint.method} {endpoint.path}")
def test_every_operation_has_a_unique_id(endpoint: Endpoint) -> None:
    assert [other.operation_id for other in ENDPOINTS].count(endpoint.operation_id) == 1
