"""Generated requests from the OpenAPI document: no 500s, every reply as documented.

schemathesis builds the requests; its pytest plugin is not used because it
fails under pytest 9 (AttributeError on ``_nodeid`` with schemathesis 4.32.5),
so each operation's strategy runs under a plain Hypothesis ``given``.
"""

from __future__ import annotations

import schemathesis
from schemathesis.checks import positive_data_acceptance
from hypothesis import HealthCheck, given, settings

from damba import __version__, commands
from damba.config import Limits


def test_generated_requests_follow_the_document(api, store, app_kind):
    """Every generated request gets a documented, non-500 JSON reply."""
    store.open_stream(commands.init(__version__, Limits()))  # as damba serve does
    load = schemathesis.openapi.from_wsgi if app_kind == "wsgi" else schemathesis.openapi.from_asgi
    schema = load("/api/v1/openapi.json", api.app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 17
    # The event stream keeps its response open for minutes; its own tests cover it.
    operations = [op for op in operations if not op.path.endswith("/events/stream")]

    for operation in operations:

        @settings(max_examples=30, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def check(case):
            response = case.call()
            assert response.status_code < 500, (case.path, response.text)
            headers = {name.lower(): value for name, value in response.headers.items()}
            assert headers["content-type"][0].startswith("application/json")
            # A request valid by the document may still name an id that does not
            # exist or a name already taken, so valid data may be rejected.
            case.validate_response(response, excluded_checks=[positive_data_acceptance])

        check()
