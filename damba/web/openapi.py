"""The OpenAPI 3 description of API v1, served at /api/v1/openapi.json."""

from __future__ import annotations

import re
from typing import Any

from damba import __version__
from damba.dashboard.stream import STREAM_PATH, openapi_path_item
from damba.errors import STATUS_BY_CODE
from damba.web import health
from damba.web.endpoints import API_PREFIX, ENDPOINTS, Endpoint

_PARAMETER_DOCS = {
    "uid": "The participant's access key, as /user/addme returned it.",
    "rid": "A route id, as /addroute returned it.",
    "sid": "A session id, as /join returned it.",
    "steps": "The number of steps of the generated route, 1 to maxsteps.",
}

_ERROR = {
    "type": "object",
    "required": ["result", "code", "desc"],
    "properties": {
        "result": {"type": "string", "enum": ["error"]},
        "code": {"type": "string", "enum": sorted(STATUS_BY_CODE)},
        "desc": {"type": "string"},
    },
}

_OK = {
    "type": "object",
    "required": ["result", "desc"],
    "properties": {
        "result": {"type": "string", "enum": ["ok"]},
        "desc": {"type": "string"},
    },
    "additionalProperties": True,
}

_SESSION_REPLY = {
    "allOf": [
        {"$ref": "#/components/schemas/Ok"},
        {
            "type": "object",
            "properties": {
                "sid": {"type": "string"},
                "rid": {"type": "string"},
                "step": {"type": "integer", "description": "0 at START, 999 once ended"},
                "name": {"type": "string"},
                "status": {"type": "string", "enum": ["running", "finished", "stopped"]},
            },
        },
    ]
}

_REQUEST_BODIES: dict[str, dict[str, Any]] = {
    "/user/addme": {
        "required": False,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 80}},
                }
            }
        },
    },
    "/addroute/uid/{uid}": {
        "required": True,
        "content": {
            "text/plain": {"schema": {"type": "string"}},
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["text"],
                    "properties": {"text": {"type": "string"}},
                }
            },
        },
    },
}

_QUERY_PARAMETERS: dict[str, list[dict[str, Any]]] = {
    "/user/addme": [
        {"name": "name", "in": "query", "required": False,
         "schema": {"type": "string", "minLength": 1, "maxLength": 80},
         "description": "The public name, 1 to 80 printable characters."}
    ],
    "/info/events": [
        {"name": "after", "in": "query", "required": False, "schema": {"type": "string"},
         "description": "Return events after this stream id (exclusive)."},
        {"name": "count", "in": "query", "required": False,
         "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
         "description": "The number of events to return, 100 by default."},
        {"name": "order", "in": "query", "required": False,
         "schema": {"type": "string", "enum": ["asc", "desc"]},
         "description": "desc reads backwards from the newest event."},
    ],
}


def _operation(endpoint: Endpoint) -> dict[str, Any]:
    names = re.findall(r"{(\w+)}", endpoint.template)
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"},
         "description": _PARAMETER_DOCS[name]}
        for name in names
    ]
    parameters += _QUERY_PARAMETERS.get(endpoint.template, [])
    is_session = endpoint.action in ("startsess", "stepsess", "stopsess")
    ok_schema = {"$ref": "#/components/schemas/SessionReply" if is_session else "#/components/schemas/Ok"}
    operation: dict[str, Any] = {
        "summary": endpoint.summary,
        "operationId": endpoint.method.lower() + re.sub(r"\W+", "_", endpoint.template),
        "parameters": parameters,
        "responses": {
            str(endpoint.status): {
                "description": "Success",
                "content": {"application/json": {"schema": ok_schema}},
            },
            "default": {
                "description": "An error, with a stable code",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            },
        },
    }
    if endpoint.template in _REQUEST_BODIES:
        operation["requestBody"] = _REQUEST_BODIES[endpoint.template]
    return operation


def openapi_document() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for endpoint in ENDPOINTS:
        paths.setdefault(API_PREFIX + endpoint.template, {})[endpoint.method.lower()] = (
            _operation(endpoint)
        )
    paths[API_PREFIX + "/openapi.json"] = {
        "get": {
            "summary": "This OpenAPI document.",
            "operationId": "get_openapi",
            "responses": {"200": {"description": "The document",
                                  "content": {"application/json": {"schema": {"type": "object"}}}}},
        }
    }
    paths.update(health.openapi_paths())
    paths[API_PREFIX + STREAM_PATH] = openapi_path_item()
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Damba API",
            "version": __version__,
            "description": "An event-sourced business-process engine. Every response "
            "is a JSON object with result and desc; errors add a stable code.",
        },
        "paths": paths,
        "components": {
            "schemas": {"Ok": _OK, "Error": _ERROR, "SessionReply": _SESSION_REPLY},
        },
    }
