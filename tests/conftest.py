"""Test harness: the demo upstream and the gateway as real processes, talking real HTTP on loopback.

`upstream` is the demo upstream (v1 + v2) in its own process; its request log (`/_demo/requests`)
is how tests count and inspect upstream calls. `gateway` is `casegraph serve` in its own process,
pointed at it, passing the caller's credential through, with the cache off (test_cache.py and
test_response_cache.py start their own gateways with it on).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gateway.demo import DEMO_TOKEN
from tests.support import DEMO_TOKEN as SUPPORT_TOKEN
from tests.support import PHASE_REPORTS, Gateway, Upstream, start_gateway, start_upstream, stop

assert DEMO_TOKEN == SUPPORT_TOKEN


@pytest.fixture(scope="session")
def logs_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Where every process started by the tests writes its log. After the last of them has stopped, the
    logs of the whole run are read: no token may appear in any of them."""
    path = tmp_path_factory.mktemp("logs")
    yield path
    leaks = [
        log.name for log in sorted(path.glob("*.log")) if "demo-token" in log.read_text(errors="replace")
    ]
    assert leaks == [], f"a token was logged in {leaks} (under {path})"


@pytest.fixture(scope="session")
def upstream(logs_dir: Path) -> Iterator[Upstream]:
    upstream = start_upstream(logs_dir / "upstream.log")
    yield upstream
    stop(upstream.process)


@pytest.fixture(scope="session")
def gateway(upstream: Upstream, logs_dir: Path) -> Iterator[Gateway]:
    # exact upstream call counts; caching has its own tests
    gw = start_gateway(upstream.url, logs_dir / "gateway.log", CACHE_TTL="0")
    yield gw
    stop(gw.process)


@pytest.fixture
def calls(upstream: Upstream) -> Upstream:
    """The upstream with an empty request log: what the test causes is all it will hold."""
    upstream.reset()
    return upstream


@pytest.fixture
def httpx_upstream_transport(monkeypatch: pytest.MonkeyPatch) -> None:
    """The upstream client on httpx's own transport, where respx's mocks sit (the gateway's is aiohttp's,
    `gateway/upstream/transport.py`); for the tests that mock upstream answers with respx."""
    monkeypatch.setattr(
        "gateway.upstream.http.UpstreamTransport", lambda max_connections: httpx.AsyncHTTPTransport()
    )


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> pytest.TestReport:
    """Each phase's report kept on the test item, so that a fixture can tell at teardown whether its test
    failed (`tests.support.failed`: tests/test_browser.py keeps a screenshot then)."""
    report: pytest.TestReport = yield
    item.stash.setdefault(PHASE_REPORTS, {})[report.when] = report
    return report
