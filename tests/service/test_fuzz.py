"""Schemathesis against the OpenAPI spec of a real server: no input it can
generate from the spec (or around it) may produce a 5xx, and every answer,
errors included, matches the schema the document publishes for its status."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import response_schema_conformance

from tests.service.conftest import API_KEY

FUZZED = r"^/(v1/score|v1/model|healthz|readyz)"


def test_no_server_errors_on_scoring_routes(server):
    schema = schemathesis.openapi.from_url(server.url + "/openapi.json").include(path_regex=FUZZED)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/v1/score", "/v1/score/batch", "/v1/model"}
    for op in operations:

        @given(case=op.as_strategy())
        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def run(case):
            response = case.call(headers={"Authorization": f"Bearer {API_KEY}"})
            assert response.status_code < 500, (case.path, response.status_code, response.text[:300])
            case.validate_response(response, checks=[response_schema_conformance])

        run()


def test_error_bodies_match_the_published_schema(server):
    """One 4xx of each kind, from scoring, grading and the review API, against ErrorBody."""
    from jsonschema import Draft202012Validator

    with server.client() as c:
        doc = c.get("/openapi.json").json()
    error_schema = {**doc["components"]["schemas"]["ErrorBody"], "components": doc["components"]}
    validator = Draft202012Validator(error_schema)  # its $refs resolve in the embedded components
    with server.client() as c, server.client(key=None) as anon:
        answers = {
            "bad JSON": c.post("/v1/score", content=b"{"),
            "invalid conversation": c.post("/v1/score", json={"id": "x"}),
            "invalid batch items": c.post("/v1/score/batch", json={"conversations": [{"id": "x"}, {}]}),
            "query validation": c.post("/v1/score?live=maybe", json={}),
            "no key": anon.post("/v1/score", json={}),
            "review login validation": anon.post("/api/review/login", json={"name": 5}),
            "review not logged in": anon.get("/api/review/queue"),
        }
    for what, r in answers.items():
        assert 400 <= r.status_code < 500, (what, r.status_code)
        errors = [e.message for e in validator.iter_errors(r.json())]
        assert not errors, (what, r.json(), errors)
        if r.status_code == 422:  # the route publishes this very schema for it
            published = doc["paths"][r.request.url.path][r.request.method.lower()]["responses"]["422"]
            assert published["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorBody"}
