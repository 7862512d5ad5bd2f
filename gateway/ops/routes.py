"""An upstream path as a route: its ids as `{id}` (the metrics' `route` label, the upstream spans' name and
`url.template`), and which API it belongs to. No side effects on import (metrics are made on first import of
`gateway.ops.metrics`, after the multiprocess directory is set)."""

from __future__ import annotations

import re
from functools import lru_cache

_ID_SEGMENT = re.compile(r"/[0-9]+(?=/|$)")


@lru_cache(maxsize=256)
def route_template(path: str) -> str:
    """An upstream path with its ids as `{id}`: `/api/v2/cases/12/activities` -> `/api/v2/cases/{id}/activities`
    (the metrics' `route` label, the upstream spans' name and `url.template`). A base URL's own path before
    `/api/` is dropped."""
    start = path.find("/api/")
    return _ID_SEGMENT.sub("/{id}", path[start:] if start >= 0 else path)


def api_of(path: str) -> str:
    if "/api/v1/" in path:
        return "v1"
    if "/api/v2/" in path:
        return "v2"
    return "other"
