"""Escaped path segments, decoded as the master decodes them: ``net/http`` unescapes the path once,
Echo routes on ``RawPath`` or ``Path``, and grpc-gateway v1.16 splits the unescaped path at ``/``
(see the module docstring of ``detorm/local/_app.py``)."""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
import pytest

from detorm.local import LocalMaster, Seeder
from tests.conftest import error_of

NOT_IMPLEMENTED = {"code": 12, "reason": "Unimplemented", "error": "Not Implemented"}


@dataclass
class World:
    api: httpx.Client
    target: int  # labels ["keep"]
    victim: int  # labels ["prod", "cv"]: what an attack aims at

    def labels(self, experiment: int) -> list[str]:
        response = self.api.get(f"/api/v1/experiments/{experiment}")
        assert response.status_code == 200, response.text
        labels: list[str] = response.json()["experiment"]["labels"]
        return labels

    def label_path(self, segment: str) -> str:
        return f"/api/v1/experiments/{self.target}/labels/{segment}"


@pytest.fixture
def world(local_master: LocalMaster, api: httpx.Client) -> Iterator[World]:
    with Seeder(local_master.database) as seed:
        target = seed.experiment(name="target", labels=["keep"])
        victim = seed.experiment(name="victim", labels=["prod", "cv"])
        seed.model("a:b")
    yield World(api, target, victim)


def raw_request(api: httpx.Client, method: str, target: str) -> tuple[int, bytes]:
    """Send ``target`` exactly as written (httpx would resolve ``..`` segments first)."""
    url = urlsplit(str(api.base_url))
    connection = http.client.HTTPConnection(url.hostname or "", url.port)
    try:
        connection.request(method, target, headers={"Authorization": api.headers["Authorization"]})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@pytest.mark.parametrize(
    ("segment", "label"),
    [
        ("%2E", "."),
        ("%2e", "."),
        ("%2E%2E", ".."),
        ("...", "..."),
        ("%25", "%"),
        ("%252F", "%2F"),  # unescaped once only
        ("%3F", "?"),
        ("%23", "#"),
        ("%20", " "),
        ("na%C3%AFve%20%E2%9C%93", "naïve ✓"),
        ("a+b", "a+b"),  # a path is not a query: "+" stays "+"
        ("a%2Bb", "a+b"),
        ("a%26b%3Dc", "a&b=c"),
    ],
)
def test_a_label_segment_is_unescaped_once(world: World, segment: str, label: str) -> None:
    assert world.api.put(world.label_path(segment)).json() == {"labels": ["keep", label]}
    assert world.labels(world.target) == ["keep", label]
    assert world.api.delete(world.label_path(segment)).json() == {"labels": ["keep"]}
    assert world.labels(world.victim) == ["prod", "cv"]


def test_an_escaped_slash_never_reaches_another_route(world: World) -> None:
    # The unescaped path has eight segments, and no DELETE route has eight: an unknown URI.
    for segment in (f"..%2F..%2F{world.victim}", f"%2E%2E%2F%2E%2E%2F{world.victim}"):
        response = world.api.delete(world.label_path(segment))
        assert response.status_code == 501 and error_of(response) == NOT_IMPLEMENTED
    # Dot segments sent as they are: nothing on the way cleans them either.
    status, _ = raw_request(world.api, "DELETE", world.label_path(f"../../{world.victim}"))
    assert status == 501
    assert world.labels(world.victim) == ["prod", "cv"]
    assert world.labels(world.target) == ["keep"]


def test_labels_holding_a_slash_cannot_be_addressed(world: World) -> None:
    response = world.api.put(world.label_path("a%2Fb"))
    assert response.status_code == 501 and error_of(response) == NOT_IMPLEMENTED
    # A value ending in "/" leaves a trailing slash, which RemoveTrailingSlash drops: the master
    # then edits the label before it ("a"), or the empty label.
    assert world.api.put(world.label_path("a%2F")).json() == {"labels": ["keep", "a"]}
    assert world.api.put(world.label_path("%2F")).json() == {"labels": ["keep", "a", ""]}
    assert world.api.delete(world.label_path("a%2F")).json() == {"labels": ["keep", ""]}


@pytest.mark.parametrize("segment", ["a%3Ab", "%3Ab", "a:b", "b%3A"])
def test_a_colon_in_the_last_segment_is_a_verb_no_route_has(world: World, segment: str) -> None:
    response = world.api.put(world.label_path(segment))
    assert response.status_code == 501 and error_of(response) == NOT_IMPLEMENTED
    assert world.labels(world.target) == ["keep"]


def test_a_colon_before_the_last_segment_is_data(world: World) -> None:
    response = world.api.get("/api/v1/models/a%3Ab/versions")
    assert response.status_code == 200 and response.json()["model"]["name"] == "a:b"


@pytest.mark.parametrize("target", ["/labels/%zz", "/labels/%2", "/labels/a%", "/info%"])
def test_a_malformed_escape_is_refused_by_the_http_server(world: World, target: str) -> None:
    if target.startswith("/labels/"):
        target = f"/api/v1/experiments/{world.target}{target}"
    response = world.api.put(target)
    assert response.status_code == 400 and response.text == "400 Bad Request"
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert world.labels(world.target) == ["keep"]


def test_a_segment_that_is_not_utf8_fails_when_the_gateway_marshals_it(
    world: World, local_master: LocalMaster
) -> None:
    marshal = {
        "code": 13,
        "reason": "Internal",
        "error": "grpc: error while marshaling: string field contains invalid UTF-8",
    }
    for client in (world.api, httpx.Client(base_url=local_master.url)):  # before authentication
        response = client.put(world.label_path("a%FF"))
        assert response.status_code == 500 and error_of(response) == marshal
    assert world.labels(world.target) == ["keep"]
    # an int32 parameter fails to parse first (400)
    response = world.api.get("/api/v1/experiments/%FF")
    assert response.status_code == 400
    assert error_of(response)["error"] == (
        'type mismatch, parameter: experiment_id, error: strconv.ParseInt: parsing "\\xff": '
        "invalid syntax"
    )


def test_echo_routes_on_the_path_as_sent_when_go_would_escape_it_otherwise(world: World) -> None:
    # RawPath is "/api%2Fv1/experiments": not under /api/v1/*, so not the gateway's
    response = world.api.get("/api%2Fv1/experiments")
    assert response.status_code == 404 and "error" not in response.json()
    # and Echo's route parameters come from RawPath as they are...
    response = world.api.get("/checkpoints/%2E%2E")
    assert response.status_code == 400
    assert response.json()["message"].startswith("unable to parse checkpoint UUID %2E%2E: ")
    # ...or from Path, when Go would have escaped the path the same way (no RawPath)
    response = world.api.get("/checkpoints/a%20b")
    assert response.status_code == 400
    assert response.json()["message"].startswith("unable to parse checkpoint UUID a b: ")
