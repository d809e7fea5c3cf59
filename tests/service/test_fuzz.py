"""Schemathesis against the OpenAPI spec of a real server: no input it can
generate from the spec (or around it) may produce a 5xx."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings

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

        run()
