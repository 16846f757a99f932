"""`/api/v1/docs/`: the OpenAPI schema as one self-contained HTML page.

No Swagger UI or Redoc: their assets would come from a CDN (no internet here) or from a
package this project does not ship. The page is rendered on the server from the same schema
as `/api/v1/schema/`, with no JavaScript and no external requests.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template import engines
from drf_spectacular.generators import SchemaGenerator

from annotate.api.permissions import is_staff

TEMPLATE = Path(__file__).with_name("docs.html")
METHODS = ("get", "post", "put", "patch", "delete")


@lru_cache(maxsize=1)
def api_schema() -> dict[str, Any]:
    """The OpenAPI document (built once per process: routes do not change at run time)."""
    return SchemaGenerator().get_schema(request=None, public=True)


def type_label(schema: dict[str, Any] | None) -> str:
    """A short human reading of a JSON schema: `Campaign`, `array of string`, `integer`…"""
    if not schema:
        return "any"
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    for combinator in ("allOf", "oneOf", "anyOf"):
        if combinator in schema:
            parts = [type_label(part) for part in schema[combinator]]
            return " | ".join(part for part in parts if part != "NullEnum")
    if "enum" in schema:
        return "one of " + ", ".join(str(value) for value in schema["enum"] if value is not None)
    kind = schema.get("type", "object")
    if kind == "array":
        return f"array of {type_label(schema.get('items'))}"
    if kind == "object" and "additionalProperties" in schema:
        extra = schema["additionalProperties"]
        return f"object of {type_label(extra if isinstance(extra, dict) else None)}"
    if schema.get("format"):
        kind = f"{kind} ({schema['format']})"
    if schema.get("nullable"):
        kind += ", nullable"
    return kind


def media_row(media: str, spec: dict[str, Any]) -> dict[str, Any]:
    schema = spec.get("schema") or {}
    return {"media": media, "type": type_label(schema), "is_ref": "$ref" in schema}


def operations(schema: dict[str, Any]) -> list[dict[str, Any]]:
    """Each operation flattened for the template, in path order."""
    rows = []
    for route, item in schema.get("paths", {}).items():
        for method in METHODS:
            op = item.get(method)
            if op is None:
                continue
            body = op.get("requestBody", {}).get("content", {})
            rows.append(
                {
                    "anchor": op.get("operationId", f"{method}-{route}"),
                    "method": method.upper(),
                    "path": route,
                    "summary": op.get("summary", ""),
                    "description": op.get("description", ""),
                    "parameters": [
                        {
                            "name": p["name"],
                            "where": p["in"],
                            "type": type_label(p.get("schema")),
                            "required": p.get("required", False),
                            "description": p.get("description", ""),
                        }
                        for p in op.get("parameters", [])
                    ],
                    "body": [media_row(media, spec) for media, spec in body.items()],
                    "responses": [
                        {
                            "code": code,
                            "description": response.get("description", ""),
                            "content": [
                                media_row(media, spec)
                                for media, spec in response.get("content", {}).items()
                            ],
                        }
                        for code, response in op.get("responses", {}).items()
                    ],
                }
            )
    return rows


def components(schema: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for name, spec in sorted(schema.get("components", {}).get("schemas", {}).items()):
        required = set(spec.get("required", []))
        out.append(
            {
                "name": name,
                "description": spec.get("description", ""),
                "fields": [
                    {
                        "name": field,
                        "type": type_label(prop),
                        "required": field in required,
                        "read_only": prop.get("readOnly", False),
                        "description": prop.get("description", ""),
                    }
                    for field, prop in spec.get("properties", {}).items()
                ],
                "enum": type_label(spec) if "enum" in spec else "",
            }
        )
    return out


def api_docs(request: HttpRequest) -> HttpResponse:
    """Staff only: anonymous visitors go to the login page, labelers get a 403."""
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    if not is_staff(request.user):
        raise PermissionDenied("The API documentation is for staff.")
    schema = api_schema()
    template = engines["django"].from_string(TEMPLATE.read_text(encoding="utf-8"))
    context = {
        "info": schema.get("info", {}),
        "operations": operations(schema),
        "components": components(schema),
    }
    return HttpResponse(template.render(context, request))
