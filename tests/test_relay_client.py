"""A real client pages through every demo case: Apollo Client with relayStylePagination (tests/node/page_all.mjs,
run by node) reads all v2 cases 7 at a time and all v1 cases 11 at a time, forward (first/after) and backward
(last/before), and ends with every id exactly once in the upstream's order, each window costing exactly the
upstream pages its plan names (`make test` installs the client with `npm ci` in tests/node)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from gateway.schema.connection import plan_pages
from tests.support import DEMO_TOKEN
from tests.test_connections import upstream_ids

NODE_DIR = Path(__file__).parent / "node"
NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(
    NODE is None or not (NODE_DIR / "node_modules" / "@apollo" / "client").is_dir(),
    reason="node or tests/node/node_modules is missing (`make test` runs `npm ci` in tests/node)",
)


def pages_of_a_run(length: int, size: int, max_per_page: int, forward: bool) -> Counter[tuple[int, int]]:
    """The upstream pages (page, per_page) paging a list of `length` by `size` costs: forward, the first
    window does not know the count yet; backward, the first `last` reads page 1 for it, and serves from it
    when that page holds the window."""
    pages: Counter[tuple[int, int]] = Counter()
    count = None
    if forward:
        for start in range(0, length, size):
            plan = plan_pages(start, start + size, max_per_page, count)
            pages.update((plan.page + n, plan.per_page) for n in range(plan.pages))
            count = length
        return pages
    pages[(1, max_per_page)] += 1
    for end in range(length, 0, -size):
        start = max(0, end - size)
        if end == length and length <= max_per_page:
            continue
        plan = plan_pages(start, end, max_per_page, length)
        pages.update((plan.page + n, plan.per_page) for n in range(plan.pages))
    return pages


def test_apollo_client_pages_through_every_case_both_ways(gateway, upstream, calls):
    v2_ids = upstream_ids(upstream, "/api/v2/cases", "case_id", 50)
    v1_ids = upstream_ids(upstream, "/api/v1/cases", "id", 100)
    assert (len(v2_ids), len(v1_ids)) == (300, 303)
    calls.reset()
    run = subprocess.run(
        [NODE, "page_all.mjs", f"{gateway.url}/graphql"],  # type: ignore[list-item]
        cwd=NODE_DIR,
        env={**os.environ, "CASEGRAPH_TOKEN": DEMO_TOKEN},
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr.decode()
    answer = json.loads(run.stdout)
    for name, ids, size in (("v2", v2_ids, 7), ("v1", v1_ids, 11)):
        for direction in ("forward", "backward"):
            got = answer[name][direction]
            assert got["ids"] == ids, (name, direction)  # every id once, in the upstream's order
            assert got["totalCount"] == len(ids)
            assert got["requests"] == -(-len(ids) // size)  # one GraphQL request per window

    requests = calls.requests()
    by_path: dict[str, Counter[tuple[int, int]]] = {"/api/v2/cases": Counter(), "/api/v1/cases": Counter()}
    for request in requests:
        by_path[request["path"]][
            (int(request["params"]["page"][0]), int(request["params"]["per_page"][0]))
        ] += 1
    assert by_path["/api/v2/cases"] == pages_of_a_run(300, 7, 50, True) + pages_of_a_run(300, 7, 50, False)
    assert by_path["/api/v1/cases"] == pages_of_a_run(303, 11, 100, True) + pages_of_a_run(
        303, 11, 100, False
    )
    # 2 * (43 + 28) windows: a page size fits every one of them, so one call each; and the two count pages
    assert len(requests) == 2 * (43 + 28) + 2
