"""The Kubernetes manifests (`deploy/k8s`) checked offline with the real tools, and rehearsed with real
processes (no cluster exists here):

- `kubectl kustomize` renders the demo and the production overlay;
- kubernetes-validate (strict) checks every rendered object against the schemas of Kubernetes 1.37;
- checkov's Kubernetes checks pass on the rendered manifests, every skipped check named here and justified
  in the manifest (and a careless manifest does fail them);
- what neither checks: selectors, ports and names that must agree, probes on paths the gateway serves, the
  grace period against SHUTDOWN_TIMEOUT, Redis' memory against its limit, and the settings each pod gets
  (the Secret's `.env` read from the working directory) loading as a valid configuration;
- the demo overlay's pods as processes: redis-server with the Redis container's arguments, the demo
  upstream and `casegraph serve` with their containers' arguments and environment, every probe answered;
- a short rolling restart (bench/rolling.py, whose full 60 s run is `make rehearsal`): 3 gateways sharing
  one redis-server behind HAProxy, each replaced in turn under load, and no request fails; then one killed
  with SIGKILL, and only requests in flight on it fail.

`make test` installs HAProxy (Debian) and checkov (in a venv of its own, `.venv/checkov`: its pins would
hold back the test tools); kubectl is on the machine; kubernetes-validate is in the `test` extra. A missing
tool fails the tests rather than skipping them.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import signal
import socket
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import yaml

from bench.rolling import run, single_cases
from gateway.cli import parser
from gateway.http.app import create_app
from gateway.ops.config import load_settings
from tests.support import Metrics, Process, RedisServer, free_port, start, stop, wait_for
from tests.test_docker import COMPOSE, ROOT, SETTINGS, container_environment, relocate, runtime

K8S = ROOT / "deploy" / "k8s"
OVERLAYS = {"demo": "casegraph-demo", "production": "casegraph"}  # overlay -> namespace
KUBERNETES = "1.37.0"  # the schemas kubernetes-validate checks against (its release's newest)
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
GATEWAY = {"app.kubernetes.io/name": "casegraph", "app.kubernetes.io/component": "gateway"}
# checkov's skips, each justified in the manifest's `checkov.io/skipN` annotation
SKIPS = {
    "demo": {
        ("CKV_K8S_43", "Deployment.casegraph-demo.casegraph"),  # no published image to pin by digest
        ("CKV_K8S_43", "Deployment.casegraph-demo.casegraph-redis"),
        ("CKV_K8S_43", "Deployment.casegraph-demo.casegraph-demo-upstream"),
        ("CKV_K8S_15", "Deployment.casegraph-demo.casegraph"),  # image loaded by hand: IfNotPresent
        ("CKV_K8S_15", "Deployment.casegraph-demo.casegraph-demo-upstream"),
    },
    "production": {
        ("CKV_K8S_43", "Deployment.casegraph.casegraph"),
        ("CKV_K8S_43", "Deployment.casegraph.casegraph-redis"),
    },
}


def tool(name: str) -> str:
    """An executable from the venv (kubernetes-validate), checkov's own venv (`.venv/checkov`), or PATH
    (kubectl, redis-server, redis-cli); missing is a failure: `make test` installs them."""
    for beside in (Path(sys.executable).parent / name, Path(sys.prefix) / name / "bin" / name):
        if beside.exists():
            return str(beside)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: `make test` installs it (see the Makefile's test target)")
    return found


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, list[dict[str, Any]]]]:
    """Each overlay as `kubectl kustomize` renders it: the file, and its objects."""
    out = tmp_path_factory.mktemp("k8s")
    found = {}
    for overlay in OVERLAYS:
        result = subprocess.run(
            [tool("kubectl"), "kustomize", str(K8S / "overlays" / overlay)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        path = out / f"{overlay}.yaml"
        path.write_text(result.stdout)
        found[overlay] = (path, [doc for doc in yaml.safe_load_all(result.stdout) if doc])
    return found


def base_name(obj: dict[str, Any]) -> str:
    """The name without the hash suffix kustomize gives generated ConfigMaps and Secrets."""
    name = obj["metadata"]["name"]
    return re.sub(r"-[a-z0-9]{10}$", "", name) if obj["kind"] in ("ConfigMap", "Secret") else name


def find(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (found,) = [o for o in objects if o["kind"] == kind and base_name(o) == name]
    return found


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    (only,) = deployment["spec"]["template"]["spec"]["containers"]
    return only


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return selector.items() <= labels.items()


def pod_labels(deployment: dict[str, Any]) -> dict[str, str]:
    return deployment["spec"]["template"]["metadata"]["labels"]


def quantity(value: str) -> float:
    """A Kubernetes quantity (`640Mi`, `1`, `500m`) or a Redis size (`192mb`) as a number (bytes, cores)."""
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "mb": 2**20, "gb": 2**30, "m": 0.001, "": 1}
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(Ki|Mi|Gi|mb|gb|m|)", str(value))
    assert match, value
    return float(match[1]) * units[match[2]]


# --- rendering, schemas, policies -------------------------------------------------------------------------


def test_each_overlay_renders_exactly_these_objects(rendered):
    common = {
        ("ServiceAccount", "casegraph"),
        ("ConfigMap", "casegraph-config"),
        ("Deployment", "casegraph"),
        ("Service", "casegraph"),
        ("HorizontalPodAutoscaler", "casegraph"),
        ("PodDisruptionBudget", "casegraph"),
        ("NetworkPolicy", "casegraph"),
        ("Deployment", "casegraph-redis"),
        ("Service", "casegraph-redis"),
        ("NetworkPolicy", "casegraph-redis"),
    }
    demo = {
        ("Namespace", "casegraph-demo"),
        ("Secret", "casegraph-upstreams"),  # generated from overlays/demo/upstreams.env
        ("Deployment", "casegraph-demo-upstream"),
        ("Service", "casegraph-demo-upstream"),
        ("NetworkPolicy", "casegraph-demo-upstream"),
    }
    expected = {"demo": common | demo, "production": common | {("Namespace", "casegraph")}}
    for overlay, namespace in OVERLAYS.items():
        objects = rendered[overlay][1]
        kinds = [(o["kind"], base_name(o)) for o in objects]
        assert sorted(kinds) == sorted(expected[overlay]), overlay
        for obj in objects:
            if obj["kind"] != "Namespace":
                assert obj["metadata"]["namespace"] == namespace, (overlay, obj["metadata"])
            assert obj["metadata"]["labels"]["app.kubernetes.io/part-of"] == "casegraph"
    # production keeps no credential: the Secret is made beside the overlay (docs/deployment.md)
    assert not any(o["kind"] == "Secret" for o in rendered["production"][1])


def kubernetes_validate(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("kubernetes-validate"), "--strict", "--kubernetes-version", KUBERNETES, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kubernetes_validate_accepts_every_object(rendered, overlay):
    path, objects = rendered[overlay]
    result = kubernetes_validate(path)
    assert result.returncode == 0, result.stdout + result.stderr
    passed = re.findall(r"passed for resource (\S+) against version 1\.37", result.stdout + result.stderr)
    assert len(passed) == len(objects), result.stdout + result.stderr


def test_kubernetes_validate_rejects_a_misspelt_field(rendered, tmp_path):
    _path, objects = rendered["demo"]
    broken = json.loads(json.dumps(objects))
    probe = container(find(broken, "Deployment", "casegraph"))["readinessProbe"]
    probe["periodSecond"] = probe.pop("periodSeconds")
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump_all(broken))
    result = kubernetes_validate(path)
    assert result.returncode != 0
    assert "periodSecond" in result.stdout + result.stderr


def careless(rendered: dict[str, tuple[Path, list[dict[str, Any]]]], path: Path) -> Path:
    """The production gateway Deployment without resources and the token setting, its root writable."""
    deployment = json.loads(json.dumps(find(rendered["production"][1], "Deployment", "casegraph")))
    del deployment["spec"]["template"]["spec"]["automountServiceAccountToken"]
    del container(deployment)["resources"]
    container(deployment)["securityContext"]["readOnlyRootFilesystem"] = False
    path.write_text(yaml.safe_dump(deployment))
    return path


@pytest.fixture(scope="module")
def checkov_results(rendered, tmp_path_factory) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """checkov's Kubernetes checks, offline (`--skip-download`: no guidelines fetched), in one run over
    both overlays and a careless manifest: per file (`demo`, `production`, `careless`), the passed, failed
    and skipped checks."""
    files = {overlay: path for overlay, (path, _objects) in rendered.items()}
    files["careless"] = careless(rendered, tmp_path_factory.mktemp("careless") / "careless.yaml")
    argv = [tool("checkov"), "--framework", "kubernetes", "--skip-download", "--output", "json"]
    for path in files.values():
        argv += ["--file", str(path)]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stdout + result.stderr  # 1: the careless file fails
    report = json.loads(result.stdout)
    assert report["check_type"] == "kubernetes" and report["summary"]["parsing_errors"] == 0, report[
        "summary"
    ]
    by_path = {str(path): name for name, path in files.items()}
    found: dict[str, dict[str, list[dict[str, Any]]]] = {name: {} for name in files}
    for outcome in ("passed_checks", "failed_checks", "skipped_checks"):
        for name in files:
            found[name][outcome] = []
        for check in report["results"][outcome]:
            found[by_path[check["file_abs_path"]]][outcome].append(check)
    return found


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_checkov_passes_every_check_but_the_justified_skips(checkov_results, overlay):
    results = checkov_results[overlay]
    assert [(c["check_id"], c["resource"]) for c in results["failed_checks"]] == []
    skipped = {
        (c["check_id"], c["resource"]): c["check_result"]["suppress_comment"]
        for c in results["skipped_checks"]
    }
    assert set(skipped) == SKIPS[overlay]
    assert all(len(reason) > 40 for reason in skipped.values()), skipped  # a reason, not a word
    # among what passed, on the gateway: probes, limits, non-root, read-only root, no token, seccomp...
    on_gateway = {c["check_id"] for c in results["passed_checks"] if c["resource"].endswith(".casegraph")}
    assert {f"CKV_K8S_{n}" for n in (8, 9, 10, 11, 12, 13, 20, 22, 23, 28, 31, 37, 38, 40)} <= on_gateway
    assert "CKV2_K8S_6" in {c["check_id"] for c in results["passed_checks"]}  # a NetworkPolicy for every pod


def test_checkov_fails_a_careless_deployment(checkov_results):
    failed = {c["check_id"] for c in checkov_results["careless"]["failed_checks"]}
    assert {"CKV_K8S_10", "CKV_K8S_11", "CKV_K8S_12", "CKV_K8S_13", "CKV_K8S_22", "CKV_K8S_38"} <= failed


# --- what the tools do not check --------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_gateway_deployment_drains_before_it_stops(rendered, overlay):
    objects = rendered[overlay][1]
    deployment = find(objects, "Deployment", "casegraph")
    spec, pod = deployment["spec"], deployment["spec"]["template"]["spec"]
    gateway = container(deployment)
    config = find(objects, "ConfigMap", "casegraph-config")["data"]
    assert spec["replicas"] == 3
    assert spec["strategy"]["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": 1}

    # the command: the image's entrypoint (`casegraph`) with these arguments, as the image runs it
    image, tag = gateway["image"].rsplit(":", 1)
    assert (image, tag) == ("casegraph", VERSION)
    parsed = parser().parse_args(gateway["args"])
    assert (parsed.command, parsed.workers) == ("serve", 2)

    # SIGTERM comes after the preStop pause (the pod out of the Service's endpoints by then); the grace
    # period holds the pause and SHUTDOWN_TIMEOUT, so requests in flight finish before any SIGKILL
    pause = gateway["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert pause >= 5
    assert pod["terminationGracePeriodSeconds"] >= pause + float(config["SHUTDOWN_TIMEOUT"]) + 5

    # the probes: liveness never calls anything, readiness checks the upstreams and Redis
    port = {p["name"]: p["containerPort"] for p in gateway["ports"]}
    assert port == {"http": int(config["PORT"]), "metrics": int(config["METRICS_PORT"])}
    probes = {kind: gateway[kind]["httpGet"] for kind in ("startupProbe", "livenessProbe", "readinessProbe")}
    assert {kind: (get["path"], get["port"]) for kind, get in probes.items()} == {
        "startupProbe": ("/healthz", "http"),
        "livenessProbe": ("/healthz", "http"),
        "readinessProbe": ("/readyz", "http"),
    }
    assert gateway["readinessProbe"]["timeoutSeconds"] > load_settings().ready_timeout
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": config["METRICS_PORT"],
        "prometheus.io/path": "/metrics",
    }
    # /metrics is served on METRICS_PORT alone (by `casegraph serve`), not by the app on PORT
    routes = {route.path for route in create_app(load_settings(metrics_port=9100)).routes}
    assert {"/healthz", "/readyz"} <= routes and "/metrics" not in routes

    # unprivileged: the image's user, no token, read-only root; what the gateway writes goes to a volume
    (user,) = runtime().all("USER")
    uid, gid = (int(part) for part in user.split(":"))
    security = pod["securityContext"]
    assert (security["runAsNonRoot"], security["runAsUser"], security["runAsGroup"]) == (True, uid, gid)
    assert pod["automountServiceAccountToken"] is False
    account = find(objects, "ServiceAccount", pod["serviceAccountName"])
    assert account["automountServiceAccountToken"] is False
    assert gateway["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    mounts = {m["mountPath"]: m["name"] for m in gateway["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]
    assert config["PROMETHEUS_MULTIPROC_DIR"].startswith("/tmp/")
    # the upstream settings: the Secret's `.env`, as a file in the working directory the image sets
    secret = volumes[mounts[runtime().one("WORKDIR")]]["secret"]
    assert base_name({"kind": "Secret", "metadata": {"name": secret["secretName"]}}) == "casegraph-upstreams"
    assert secret["items"] == [{"key": ".env", "path": ".env"}]

    # resources: requests within limits, the limit's CPU for the workers it runs
    resources = gateway["resources"]
    for kind in ("cpu", "memory"):
        assert quantity(resources["requests"][kind]) <= quantity(resources["limits"][kind])
    assert quantity(resources["limits"]["cpu"]) == parsed.workers


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_services_autoscaler_budget_and_policies_point_at_the_right_pods(rendered, overlay):
    objects = rendered[overlay][1]
    deployments = {base_name(o): o for o in objects if o["kind"] == "Deployment"}
    gateway = deployments["casegraph"]
    assert gateway["spec"]["selector"]["matchLabels"] == GATEWAY == pod_labels(gateway) | {}
    for name, deployment in deployments.items():  # each Deployment's selector picks its own pods only
        for other, pods in deployments.items():
            picked = selects(deployment["spec"]["selector"]["matchLabels"], pod_labels(pods))
            assert picked == (name == other), (name, other)

    # every Service selects exactly one Deployment's pods, on a port its container names
    for service in (o for o in objects if o["kind"] == "Service"):
        (target,) = [d for d in deployments.values() if selects(service["spec"]["selector"], pod_labels(d))]
        assert target["metadata"]["name"] == service["metadata"]["name"]
        named = {p["name"] for p in container(target)["ports"]}
        assert {p["targetPort"] for p in service["spec"]["ports"]} <= named

    hpa = find(objects, "HorizontalPodAutoscaler", "casegraph")["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "casegraph"}
    assert hpa["minReplicas"] == gateway["spec"]["replicas"] < hpa["maxReplicas"]
    assert hpa["metrics"] == [
        {
            "type": "Resource",
            "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}},
        }
    ]
    pdb = find(objects, "PodDisruptionBudget", "casegraph")["spec"]
    assert selects(pdb["selector"]["matchLabels"], pod_labels(gateway))
    assert pdb["maxUnavailable"] == 1 < hpa["minReplicas"]

    # Redis and the demo upstream take connections from the gateway pods only, on their ports
    policies = {o["metadata"]["name"]: o["spec"] for o in objects if o["kind"] == "NetworkPolicy"}
    for name, deployment in deployments.items():
        policy = policies[name]
        assert selects(policy["podSelector"]["matchLabels"], pod_labels(deployment))
        ports = {p["name"]: p["containerPort"] for p in container(deployment)["ports"]}
        if name != "casegraph":
            (rule,) = policy["ingress"]
            assert {p["port"] for p in rule["ports"]} == set(ports.values())
            (source,) = rule["from"]
            assert source["podSelector"]["matchLabels"] == GATEWAY
            continue
        # the gateway: HTTP from anywhere, its metrics from the monitoring namespace only
        public, scrape = policy["ingress"]
        assert "from" not in public and [p["port"] for p in public["ports"]] == [ports["http"]]
        assert [p["port"] for p in scrape["ports"]] == [ports["metrics"]]
        (source,) = scrape["from"]
        assert source == {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_redis_is_a_bounded_cache_where_the_gateway_looks_for_it(rendered, overlay):
    objects = rendered[overlay][1]
    deployment = find(objects, "Deployment", "casegraph-redis")
    redis = container(deployment)
    args = redis["args"]
    assert args[0] == "redis-server"
    options = dict(zip(args[1::2], args[2::2], strict=True))
    assert (options["--save"], options["--appendonly"]) == ("", "no")  # a cache: nothing on disk
    assert quantity(options["--maxmemory"]) <= 0.8 * quantity(redis["resources"]["limits"]["memory"])
    compose = yaml.safe_load(COMPOSE.read_text())["services"]["redis"]["command"]
    assert options["--maxmemory-policy"] == compose[compose.index("--maxmemory-policy") + 1] == "volatile-ttl"
    assert deployment["spec"]["replicas"] == 1 and deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert redis["securityContext"]["readOnlyRootFilesystem"] is True

    # CACHE_URL names the Redis Service and its port, which leads to the container's
    config = find(objects, "ConfigMap", "casegraph-config")["data"]
    url = urlsplit(config["CACHE_URL"])
    service = find(objects, "Service", url.hostname or "")
    (port,) = [p for p in service["spec"]["ports"] if p["port"] == url.port]
    assert {p["name"]: p["containerPort"] for p in redis["ports"]}[port["targetPort"]] == 6379


def upstreams_env(objects: list[dict[str, Any]]) -> str:
    """The `.env` a gateway pod finds in its working directory: the demo's generated Secret, or for
    production a Secret made as docs/deployment.md says."""
    secrets = [o for o in objects if o["kind"] == "Secret"]
    if not secrets:
        return "V1_URL=https://v1.cases.example\nV2_URL=https://v2.cases.example\nUPSTREAM_TOKEN=t0ken\n"
    (secret,) = secrets
    return base64.b64decode(secret["data"][".env"]).decode()


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_gateway_pods_settings_are_a_valid_configuration(rendered, overlay, monkeypatch, tmp_path):
    objects = rendered[overlay][1]
    config = find(objects, "ConfigMap", "casegraph-config")["data"]
    assert set(config) <= SETTINGS | {"PROMETHEUS_MULTIPROC_DIR"}, set(config) - SETTINGS
    (tmp_path / ".env").write_text(upstreams_env(objects))
    container_environment(monkeypatch, tmp_path, config)  # the image's ENV, the ConfigMap's; cwd = /app
    settings = load_settings()
    assert (settings.host, settings.port, settings.log_format) == ("0.0.0.0", 8000, "json")
    assert settings.auth_mode == "token" and settings.upstream_token is not None
    assert settings.cache_url == "redis://casegraph-redis:6379/0"
    assert settings.shutdown_timeout == 30.0
    if overlay == "demo":
        assert settings.v1_base == settings.v2_base == "http://casegraph-demo-upstream:9000"
        assert settings.upstream_token.get_secret_value() == "demo-token"
        assert settings.graphiql and settings.introspection
    else:
        assert (settings.v1_base, settings.v2_base) == (
            "https://v1.cases.example",
            "https://v2.cases.example",
        )
        assert not settings.graphiql and not settings.introspection  # README "Production settings"


# --- the demo overlay's pods as processes -----------------------------------------------------------------


def answers(spec: dict[str, Any], port: int) -> bool:
    """One Kubernetes probe run against a local process listening on `port`: does it pass?"""
    try:
        if "httpGet" in spec:
            url = f"http://127.0.0.1:{port}{spec['httpGet']['path']}"
            return 200 <= httpx.get(url, timeout=spec.get("timeoutSeconds", 1)).status_code < 400
        if "tcpSocket" in spec:
            with socket.create_connection(("127.0.0.1", port), timeout=2):
                return True
    except (OSError, httpx.TransportError):
        return False
    assert spec["exec"]["command"] == ["redis-cli", "ping"], spec
    result = subprocess.run([tool("redis-cli"), "-p", str(port), "ping"], capture_output=True, text=True)
    return result.stdout.strip() == "PONG"


def probes(spec: dict[str, Any]) -> list[dict[str, Any]]:
    kinds = ("startupProbe", "livenessProbe", "readinessProbe")
    return [spec[kind] for kind in kinds if kind in spec]


def all_probes_pass(spec: dict[str, Any], port: int) -> None:
    for each in probes(spec):
        wait_for(lambda each=each: answers(each, port), f"{spec['name']}: {each}")


@pytest.fixture
def demo_redis(rendered, logs_dir: Path) -> Iterator[int]:
    """redis-server with the Redis container's arguments, on loopback, its probes passing."""
    redis = container(find(rendered["demo"][1], "Deployment", "casegraph-redis"))
    assert redis["args"][0] == "redis-server"
    tool("redis-server")  # missing is a failure here, not a skip
    server = RedisServer(logs_dir / "k8s-redis.log", *redis["args"][1:])
    try:
        all_probes_pass(redis, server.port)
        assert server.client.config_get("maxmemory-policy") == {"maxmemory-policy": "volatile-ttl"}
        assert server.client.config_get("maxmemory") == {"maxmemory": str(192 * 2**20)}
        yield server.port
    finally:
        server.stop()


def test_the_demo_overlay_runs_as_processes(rendered, demo_redis, logs_dir, monkeypatch, tmp_path):
    objects = rendered["demo"][1]
    config = find(objects, "ConfigMap", "casegraph-config")["data"]
    gateway_pod = find(objects, "Deployment", "casegraph")["spec"]["template"]["spec"]
    gateway, upstream = (
        container(find(objects, "Deployment", "casegraph")),
        container(find(objects, "Deployment", "casegraph-demo-upstream")),
    )
    processes: list[Process] = []
    try:
        # the demo upstream: its container's arguments, on a free loopback port
        args, port = list(upstream["args"]), free_port()
        args[args.index("--host") + 1], args[args.index("--port") + 1] = "127.0.0.1", str(port)
        processes.append(start(args, port, logs_dir / "k8s-upstream.log", "/_demo/healthz"))
        all_probes_pass(upstream, port)
        ports = {("casegraph-redis", 6379): demo_redis, ("casegraph-demo-upstream", 9000): port}

        # the gateway: its working directory (/app) holds the Secret's `.env`, /tmp is a directory of its
        # own; the image's environment and the ConfigMap's, service addresses pointed at the processes
        app, tmp = tmp_path / "app", tmp_path / "tmp"
        app.mkdir(), tmp.mkdir()
        dotenv = upstreams_env(objects)
        for url in set(re.findall(r"https?://[^\s]+", dotenv)):
            dotenv = dotenv.replace(url, relocate(url, ports))
        (app / ".env").write_text(dotenv)
        gw_port, metrics_port = free_port(), free_port()
        env = {
            **config,
            "CACHE_URL": relocate(config["CACHE_URL"], ports),
            "PROMETHEUS_MULTIPROC_DIR": str(
                tmp / Path(config["PROMETHEUS_MULTIPROC_DIR"]).relative_to("/tmp")
            ),
            "HOST": "127.0.0.1",
            "PORT": str(gw_port),
            "METRICS_PORT": str(metrics_port),
        }
        container_environment(monkeypatch, app, env)
        processes.append(start(gateway["args"], gw_port, logs_dir / "k8s-gateway.log", "/healthz"))
        all_probes_pass(gateway, gw_port)

        url = f"http://127.0.0.1:{gw_port}"
        ready = httpx.get(url + "/readyz", timeout=10).json()
        assert {name: check["ok"] for name, check in ready["checks"].items()} == {
            "v1": True,
            "v2": True,
            "redis": True,
        }
        assert httpx.get(url + "/healthz", timeout=10).json()["cache"]["backend"] == "redis"
        # the token from `.env` goes upstream: a caller without credentials gets data
        answer = httpx.post(
            url + "/graphql", json={"query": "{ cases(perPage: 2) { items { caseId } } }"}, timeout=30
        ).json()
        assert len(answer["data"]["cases"]["items"]) == 2, answer
        # /metrics on METRICS_PORT only, the sum over the workers
        assert httpx.get(url + "/metrics", timeout=10).status_code == 404
        metrics = Metrics(httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text)
        assert metrics.get("casegraph_requests_total", operation="anonymous", outcome="ok") == 1

        # SIGTERM (after the preStop pause): both workers stop cleanly within the rest of the grace period
        grace = (
            gateway_pod["terminationGracePeriodSeconds"] - gateway["lifecycle"]["preStop"]["sleep"]["seconds"]
        )
        processes[-1].proc.send_signal(signal.SIGTERM)
        assert processes[-1].proc.wait(timeout=grace) == 0
        assert processes[-1].log().count("Finished server process") == 2
    finally:
        for process in processes:
            if process.proc.poll() is None:
                stop(process)


# --- the rehearsal: several gateways behind HAProxy -----------------------------------------------------


# 3 gateways of one worker each (quicker to start than the pods' two), 100 queries/s
SHORT: dict[str, Any] = {"instances": 3, "workers": 1, "rate": 100, "gap": 0.5}


def test_a_rolling_restart_behind_haproxy_fails_no_request(logs_dir):
    """3 gateways sharing one redis-server behind HAProxy, each replaced in turn (out of the balancer,
    SIGTERM, started again, back once /readyz passes) under 100 queries/s."""
    result = run(
        "rolling",
        120,  # a bound: the load stops once each gateway has been replaced
        rounds=1,
        concurrency=8,
        pre_stop=0.5,
        logs=logs_dir / "rehearsal-rolling",
        **SHORT,
        CACHE_TTL="300",
    )
    assert result.failures == {} and result.failed == 0
    assert result.sent == result.answered > 0
    assert result.exits == {"gw1": [0], "gw2": [0], "gw3": [0]}  # each stopped once, cleanly
    assert set(result.served) == {"gw1", "gw2", "gw3"}
    assert all(c["hrsp_5xx"] == 0 and c["eresp"] == 0 for c in result.balancer.values()), result.balancer
    # the shared cache was warm before the load: no gateway, restarted or not, asked the upstream anything,
    # and every upstream answer the queries used came from it (as many as each query needed when cold)
    assert result.upstream_calls == result.upstream_logged == 0
    assert result.saved == result.upstream_needed == result.expected_saved > result.answered


def test_a_killed_gateway_fails_only_requests_in_flight_on_it(logs_dir):
    """One of 3 gateways gets SIGKILL (every process) under load; the cache is off and the upstream
    answers after 100 ms, so that requests are in flight at the kill."""
    result = run(
        "kill",
        120,  # a bound: the load stops once the killed gateway is back
        kill_after=2,
        concurrency=16,
        upstream_latency_ms=100,
        texts=single_cases(),
        logs=logs_dir / "rehearsal-kill",
        CACHE_TTL="0",
        **SHORT,
    )
    assert result.exits[result.killed] == [-9]
    assert [exits for name, exits in result.exits.items() if name != result.killed] == [[], []]
    assert result.sent == result.answered + result.failed and result.answered > 0
    # what failed had been sent to the killed gateway and was unanswered while it died (HAProxy answers
    # 502, or closes the connection); nothing else failed, no answer was wrong
    assert set(result.failures) <= {"HTTP 502", "RemoteProtocolError"}, result.failures
    assert result.failed == result.failed_on_killed <= result.in_flight_at_kill
    # no cache: each answered query took its one upstream call (or shared one in flight in its worker)
    assert result.upstream_needed == result.answered and result.saved == 0
    assert result.upstream_calls <= result.upstream_logged <= result.upstream_calls + result.in_flight_at_kill


def test_the_deployment_doc_quotes_the_latest_recorded_rehearsal():
    recorded = sorted((ROOT / "bench" / "results").glob("rolling-*.json"))
    assert recorded, "no rehearsal recorded in bench/results (make rehearsal)"
    latest = json.loads(recorded[-1].read_text())
    doc = (ROOT / "docs" / "deployment.md").read_text()
    match = re.search(r"^## Rolling restart rehearsal\n(.*?)(?=^## |\Z)", doc, re.S | re.M)
    assert match, "docs/deployment.md has no `## Rolling restart rehearsal` section"
    section = match.group(1)
    assert f"bench/results/{recorded[-1].with_suffix('.md').name}" in section
    for r in latest["runs"]:
        row = (
            f"| {r['mode']} | {r['sent']} | {r['answered']} | {r['failed']} | {r['p50_ms']} | {r['p99_ms']} |"
        )
        assert row in section, row
