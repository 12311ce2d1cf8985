"""The OpenAPI document describes every route the app serves."""

from __future__ import annotations

import re

import falcon.inspect


def app_routes(app) -> set[tuple[str, str]]:
    """List (path template, method) for every responder the app routes to.

    HEAD and OPTIONS are left out: every GET path answers HEAD, and every
    path answers OPTIONS, the same way. The dashboard's HTML pages are not
    part of the API, so only /api/ paths and the health checks count.
    """
    found = set()
    for route in falcon.inspect.inspect_app(app).routes:
        if not (route.path.startswith("/api/") or route.path in ("/healthz", "/readyz")):
            continue
        for method in route.methods:
            if not method.internal and method.method not in ("HEAD", "OPTIONS"):
                found.add((route.path, method.method))
    return found


def test_every_route_is_documented(api):
    """A route the app serves but the document lacks fails this test."""
    document = api.simulate_get("/api/v1/openapi.json").json
    routes = app_routes(api.app)
    assert len(routes) >= 18
    for template, method in routes:
        assert template in document["paths"], f"{template} is missing from the OpenAPI document"
        assert method.lower() in document["paths"][template], f"{method} {template} is undocumented"


def test_every_documented_route_exists(api):
    document = api.simulate_get("/api/v1/openapi.json").json
    routes = app_routes(api.app)
    for template, operations in document["paths"].items():
        for method in operations:
            assert (template, method.upper()) in routes, f"{method} {template} is not served"


def test_document_is_openapi_3(api):
    document = api.simulate_get("/api/v1/openapi.json").json
    assert document["openapi"].startswith("3.")
    ids = [op["operationId"] for path in document["paths"].values() for op in path.values()]
    assert len(ids) == len(set(ids))
    for template, operations in document["paths"].items():
        names = set(re.findall(r"{(\w+)}", template))
        for operation in operations.values():
            documented = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert documented == names, template


def test_readme_lists_every_error_code():
    """Each error code the service can return appears in the README's error table."""
    from pathlib import Path

    from damba.errors import STATUS_BY_CODE

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    table = readme[readme.index("### Errors"):]
    for code in STATUS_BY_CODE:
        assert f"`{code}`" in table, f"{code} is missing from the README's error table"
