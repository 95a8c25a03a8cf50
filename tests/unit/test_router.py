"""The app's router: fixed paths, parameters, 404 and 405."""

from __future__ import annotations

import pytest

from producers.router import MethodNotAllowed, Router


@pytest.fixture
def router() -> Router[str]:
    routes: Router[str] = Router()
    routes.add("POST", "/webhooks/github", "github")
    routes.add("GET", "/healthz", "healthz")
    routes.add("POST", "/api/{project_id:int}/envelope/", "envelope")
    routes.add("POST", "/ping/{key}/{slug}", "ping")
    routes.add("GET", "/ping/{key}/{slug}", "ping-get")
    routes.add("POST", "/ping/{key}/{slug}/{suffix}", "ping-suffix")
    return routes


def test_fixed_path_resolves_without_parameters(router: Router[str]) -> None:
    match = router.resolve("POST", "/webhooks/github")
    assert match is not None
    assert (match.handler, match.params, match.pattern) == ("github", {}, "/webhooks/github")


def test_parameters_are_converted_and_the_pattern_is_the_metrics_label(router: Router[str]) -> None:
    match = router.resolve("POST", "/api/42/envelope/")
    assert match is not None
    assert match.params == {"project_id": 42}
    assert match.pattern == "/api/{project_id:int}/envelope/"


def test_an_int_parameter_does_not_match_letters(router: Router[str]) -> None:
    assert router.resolve("POST", "/api/forty/envelope/") is None


def test_a_parameter_never_spans_a_slash(router: Router[str]) -> None:
    match = router.resolve("POST", "/ping/k3y/nightly-backup/start")
    assert match is not None
    assert (match.handler, match.params) == (
        "ping-suffix",
        {"key": "k3y", "slug": "nightly-backup", "suffix": "start"},
    )


def test_one_pattern_serves_several_methods(router: Router[str]) -> None:
    post, get = router.resolve("POST", "/ping/a/b"), router.resolve("GET", "/ping/a/b")
    assert post is not None
    assert get is not None
    assert (post.handler, get.handler) == ("ping", "ping-get")


def test_known_path_under_another_method_is_method_not_allowed(router: Router[str]) -> None:
    with pytest.raises(MethodNotAllowed) as fixed:
        router.resolve("GET", "/webhooks/github")
    assert fixed.value.allowed == ["POST"]
    with pytest.raises(MethodNotAllowed) as parameterized:
        router.resolve("DELETE", "/ping/a/b")
    assert parameterized.value.allowed == ["GET", "POST"]


def test_unknown_path_resolves_to_nothing(router: Router[str]) -> None:
    assert router.resolve("POST", "/webhooks/gitlab") is None
    assert router.resolve("POST", "/api/1/envelope") is None  # the trailing slash is part of the route


def test_a_route_added_twice_is_refused(router: Router[str]) -> None:
    with pytest.raises(ValueError, match="routed twice"):
        router.add("POST", "/api/{project_id:int}/envelope/", "again")


def test_unknown_converter_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown converter"):
        Router[str]().add("GET", "/x/{id:uuid4}", "x")


def test_routes_lists_every_method_and_pattern(router: Router[str]) -> None:
    assert set(router.routes()) == {
        ("POST", "/webhooks/github"),
        ("GET", "/healthz"),
        ("POST", "/api/{project_id:int}/envelope/"),
        ("POST", "/ping/{key}/{slug}"),
        ("GET", "/ping/{key}/{slug}"),
        ("POST", "/ping/{key}/{slug}/{suffix}"),
    }
