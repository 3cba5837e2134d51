"""Collections as OSDI pages: `page` and `per_page` in; counts, `_links` (self, next, prev)
and the items under `_embedded.<name>` out. One shape for every service's lists."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

from flask import request
from marshmallow import Schema, fields, validate

MAX_PAGE = 10**6
MAX_PER_PAGE = 100  # DESIGN.md: per_page <= 100


class PageArgs(Schema):
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=MAX_PAGE))
    per_page = fields.Integer(load_default=25, validate=validate.Range(min=1, max=MAX_PER_PAGE))


def page_schema(name: str, item: type[Schema], prefix: str = "") -> type[Schema]:
    """Return the schema of a page whose items sit under _embedded.<name>; prefix keeps its
    OpenAPI component names apart from another blueprint's in the same app."""
    title = name.title().replace("_", "")
    embedded = Schema.from_dict(
        {name: fields.List(fields.Nested(item))}, name=f"{prefix}{title}Embedded"
    )
    return Schema.from_dict(
        {
            "page": fields.Integer(),
            "per_page": fields.Integer(),
            "total_pages": fields.Integer(),
            "total_records": fields.Integer(),
            "links": fields.Dict(data_key="_links"),
            "embedded": fields.Nested(embedded, data_key="_embedded"),
        },
        name=f"{prefix}{title}Page",
    )


def page_body(
    name: str, items: Sequence[Any], total: int, args: Mapping[str, Any]
) -> dict[str, Any]:
    """Shape one page of a collection for page_schema(name, ...), linking to the pages beside
    it with the request's other query arguments. A page past the end links back to the last
    page that has items, not to the one before it, empty too."""
    page, per_page = args["page"], args["per_page"]

    def link(number: int) -> dict[str, str]:
        return this_request_with(page=number, per_page=per_page)

    pages = math.ceil(total / per_page) if total else 0
    links = {"self": link(page)}
    if page < pages:
        links["next"] = link(page + 1)
    if 1 < page and pages:
        links["prev"] = link(min(page - 1, pages))
    return {
        "page": page,
        "per_page": per_page,
        "total_pages": pages,
        "total_records": total,
        "links": links,
        "embedded": {name: list(items)},
    }


def this_request_with(**changes: Any) -> dict[str, str]:
    """A link to this request's URL with some query arguments changed (a page, a cursor)."""
    query = {k: v for k, v in request.args.items() if k not in changes}
    return {"href": f"{request.base_url}?{urlencode({**query, **changes})}"}
