"""GraphiQL, served from the package: no CDN, so it works offline and in locked-down networks.

A browser's GET of /graphql without a query gets `page()`: an HTML shell that loads, from the gateway's own
origin, the files in `gateway/http/static/vendor/` (GraphiQL 4, React 18 and the explorer plugin, as their UMD
builds from the npm registry: `scripts/refresh_graphiql.py` says why not GraphiQL 5, and records versions and
sha256 in `manifest.json`) and
`gateway/http/static/graphiql.js`, which starts GraphiQL with what `data-config` says: the README's first example
query in the editor, the request headers (`GRAPHIQL_HEADERS`; the demo's token in `casegraph demo`), and the
explorer one click away in the sidebar. The page has no inline script or style, and its Content-Security-Policy allows scripts,
styles, workers and requests only from the gateway's own origin.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from gateway.ops.config import Settings

STATIC = Path(__file__).parent / "static"
PATH = "/graphiql"  # where STATIC is served; the page refers to it relatively (`graphiql/...`)

# The README's first example query (a test keeps the two the same).
EXAMPLE_QUERY = """\
# Open high-priority cases created in the last 30 days,
# newest activity first, with their people and SLA state
query OpenHighPriorityCases {
  cases(
    filter: {
      status: OPEN
      priority: [HIGH, CRITICAL]
      relativeDate: "30 days"
    }
    order: RECENTLY_EDITED
    perPage: 10
  ) {
    pageInfo { page pages count hasNextPage }
    items {
      caseId name priority subStatus { name }
      assignees { firstName lastName email }
      sla { slaType percentElapsed status }
      tags { name }
    }
  }
}
"""

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",  # the queries
        "img-src 'self' data:",  # GraphiQL's CSS holds a few images as data: URLs
        "font-src 'self' data:",  # and fonts
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>casegraph · GraphiQL</title>
<link rel="icon" href="data:,">
{styles}
</head>
<body>
<div id="graphiql" data-config="{config}">Loading GraphiQL…</div>
{scripts}
</body>
</html>
"""


def vendored() -> list[str]:
    """The files of scripts/refresh_graphiql.py, in the order the page loads them (its manifest's)."""
    manifest = json.loads((STATIC / "vendor" / "manifest.json").read_text())
    return [f"vendor/{name}" for name in manifest["files"] if name.endswith((".js", ".css"))]


def _shell() -> str:
    files = [*vendored(), "graphiql.css", "graphiql.js"]  # then the gateway's own
    styles = [f'<link rel="stylesheet" href="graphiql/{name}">' for name in files if name.endswith(".css")]
    scripts = [f'<script src="graphiql/{name}"></script>' for name in files if name.endswith(".js")]
    return PAGE.replace("{styles}", "\n".join(styles)).replace("{scripts}", "\n".join(scripts))


SHELL = _shell()


def page_config(settings: Settings) -> dict[str, Any]:
    """What graphiql.js starts GraphiQL with."""
    headers = json.dumps(settings.graphiql_headers, indent=2) if settings.graphiql_headers else ""
    return {"query": EXAMPLE_QUERY, "headers": headers}


def page(settings: Settings) -> Response:
    config = html.escape(json.dumps(page_config(settings)), quote=True)
    return HTMLResponse(
        SHELL.replace("{config}", config),
        headers={
            "Content-Security-Policy": CONTENT_SECURITY_POLICY,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-store",
        },
    )


def routes(settings: Settings) -> list[Mount]:
    """The route serving GraphiQL's files, when GraphiQL is on (StaticFiles: ETag and Last-Modified, so a
    browser revalidates its copy instead of loading it again)."""
    return [Mount(PATH, app=StaticFiles(directory=STATIC), name="graphiql")] if settings.graphiql else []


class GraphiQLPage:
    """Mixin for the gateway's strawberry view (it needs `services.settings`): GraphiQL from the package."""

    services: Any

    async def render_graphql_ide(self, request: Any) -> Response:
        return page(self.services.settings)
