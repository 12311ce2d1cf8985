"""The k3d manifests under deploy/k8s: valid objects that match compose and the code.

Objects are validated offline against the Kubernetes schemas that the
kubernetes-validate package ships, in strict mode, so a misspelt field fails.
"""

from __future__ import annotations

import copy
import re

import falcon.inspect
import kubernetes_validate
import pytest
from tests.deployment_files import (
    DOCKERFILE,
    K8S_BASE,
    K8S_LOAD,
    K8S_VERSION,
    code_variables,
    compose,
    containers,
    dockerfile_instructions,
    env_file,
    find,
    kustomize,
    manifests,
)

from damba import __version__

BASE_KINDS = {
    ("Namespace", "damba"),
    ("Service", "redis"),
    ("StatefulSet", "redis"),
    ("Deployment", "api"),
    ("Service", "api"),
}
LOAD_KINDS = {
    ("Deployment", "locust-master"),
    ("Service", "locust-master"),
    ("Deployment", "locust-worker"),
}


def base() -> list[dict]:
    return manifests(K8S_BASE)


def everything() -> list[dict]:
    return manifests(K8S_BASE, K8S_LOAD)


def settings() -> dict[str, str]:
    return env_file(K8S_BASE / "damba.env")


def validate(document: dict) -> None:
    kubernetes_validate.validate(document, K8S_VERSION, strict=True)


def test_objects_present():
    """The base contains Redis, the API and the namespace, and load adds Locust."""
    assert {(d["kind"], d["metadata"]["name"]) for d in base()} == BASE_KINDS
    assert {
        (d["kind"], d["metadata"]["name"]) for d in manifests(K8S_LOAD)
    } == LOAD_KINDS


@pytest.mark.parametrize(
    "document", everything(), ids=lambda d: f"{d['kind']}-{d['metadata']['name']}"
)
def test_manifest_valid(document):
    """Each object in the manifest files passes strict schema validation."""
    validate(document)


def test_validation_rejects_typo():
    """Strict validation rejects a misspelt probe field, so the check above can fail."""
    broken = copy.deepcopy(find(base(), "Deployment", "api"))
    probe = containers(broken)[0]["readinessProbe"]
    probe["periodSecond"] = probe.pop("periodSeconds")
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(broken)


@pytest.mark.parametrize("folder", [K8S_BASE, K8S_LOAD], ids=["base", "load"])
def test_kustomize_renders(folder):
    """`kubectl kustomize` renders each folder into valid objects in namespace damba."""
    rendered = kustomize(folder)
    if rendered is None:
        pytest.skip("kubectl is not installed on this machine")
    config_maps = [d["metadata"]["name"] for d in rendered if d["kind"] == "ConfigMap"]
    assert len(config_maps) == 1
    for document in rendered:
        validate(document)
        if document["kind"] != "Namespace":
            assert document["metadata"]["namespace"] == "damba"
        if document["kind"] == "Deployment" and document["metadata"]["name"] == "api":
            source = containers(document)[0]["envFrom"][0]["configMapRef"]["name"]
            assert source == config_maps[0]


def test_load_raises_limits():
    """The load overlay raises maxusers and maxroutes above the defaults."""
    rendered = kustomize(K8S_LOAD)
    if rendered is None:
        pytest.skip("kubectl is not installed on this machine")
    data = next(d for d in rendered if d["kind"] == "ConfigMap")["data"]
    assert int(data["DAMBA_MAXUSERS"]) > int(settings()["DAMBA_MAXUSERS"])
    assert int(data["DAMBA_MAXROUTES"]) > int(settings()["DAMBA_MAXROUTES"])


def test_images_match_compose():
    """Every container runs an image that compose runs, Damba's at this version."""
    compose_images = {service["image"] for service in compose()["services"].values()}
    for document in everything():
        if document["kind"] in ("Deployment", "StatefulSet"):
            for container in containers(document):
                assert container["image"] in compose_images
                if container["image"].startswith("damba:"):
                    assert container["image"] == f"damba:{__version__}"
                    # k3d imports the image; a pull from a registry would fail.
                    assert container["imagePullPolicy"] == "IfNotPresent"


@pytest.mark.parametrize("name", ["api", "locust-master", "locust-worker"])
def test_commands_match_compose(name):
    """The API and Locust pods run the very command of the compose service."""
    container = containers(find(everything(), "Deployment", name))[0]
    assert container["command"] == compose()["services"][name]["command"]


def test_redis_matches_compose():
    """Redis runs the compose command as args, so the image's entry point still runs."""
    container = containers(find(base(), "StatefulSet", "redis"))[0]
    assert "command" not in container
    assert container["args"] == compose()["services"]["redis"]["command"]


def test_redis_volume():
    """Redis keeps /data on a claim of its own, behind the headless Service it names."""
    statefulset = find(base(), "StatefulSet", "redis")
    claims = [
        claim["metadata"]["name"]
        for claim in statefulset["spec"]["volumeClaimTemplates"]
    ]
    mounts = {
        m["name"]: m["mountPath"] for m in containers(statefulset)[0]["volumeMounts"]
    }
    assert mounts == {claims[0]: "/data"}
    service = find(base(), "Service", statefulset["spec"]["serviceName"])
    assert service["spec"]["clusterIP"] == "None"


def test_redis_url_reaches_redis():
    """DAMBA_REDIS_URL names the Redis Service and the port it serves."""
    match = re.fullmatch(
        r"redis://([a-z0-9-]+):(\d+)/\d+", settings()["DAMBA_REDIS_URL"]
    )
    assert match
    service = find(base(), "Service", match.group(1))
    assert int(match.group(2)) in [port["port"] for port in service["spec"]["ports"]]


def test_api_probes_routed(api):
    """Readiness requests /readyz and liveness /healthz, both routes of the app."""
    routed = {route.path for route in falcon.inspect.inspect_app(api.app).routes}
    container = containers(find(base(), "Deployment", "api"))[0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert {"/readyz", "/healthz"} <= routed


def test_ports_consistent():
    """Probes and Services use named container ports, and the API uses DAMBA_PORT."""
    documents = everything()
    for document in documents:
        if document["kind"] not in ("Deployment", "StatefulSet"):
            continue
        template = document["spec"]["template"]
        names = {
            p["name"]: p["containerPort"]
            for c in template["spec"]["containers"]
            for p in c.get("ports", [])
        }
        for container in template["spec"]["containers"]:
            for probe in ("readinessProbe", "livenessProbe"):
                port = container.get(probe, {}).get("httpGet", {}).get("port")
                if port is not None:
                    assert port in names
        for service in documents:
            if service["kind"] == "Service" and (
                service["spec"]["selector"].items()
                <= template["metadata"]["labels"].items()
            ):
                for port in service["spec"]["ports"]:
                    assert port["targetPort"] in names
    api = containers(find(documents, "Deployment", "api"))[0]
    assert api["ports"][0]["containerPort"] == int(settings()["DAMBA_PORT"])


def test_services_select_pods():
    """Every Service selects the pods of exactly one workload."""
    documents = everything()
    templates = [
        d["spec"]["template"]["metadata"]["labels"]
        for d in documents
        if d["kind"] in ("Deployment", "StatefulSet")
    ]
    for service in (d for d in documents if d["kind"] == "Service"):
        selector = service["spec"]["selector"].items()
        matches = [labels for labels in templates if selector <= labels.items()]
        assert len(matches) == 1, service["metadata"]["name"]


def test_settings_known():
    """damba.env sets only variables the code reads, to values it accepts."""
    from damba.config import load_settings

    values = settings()
    assert set(values) <= code_variables()
    assert load_settings(values).log_format == "json"


def test_grace_period_covers_shutdown():
    """The pod's grace period exceeds the preStop pause plus the graceful timeout."""
    spec = find(base(), "Deployment", "api")["spec"]["template"]["spec"]
    pause = spec["containers"][0]["lifecycle"]["preStop"]["exec"]["command"]
    assert pause[0] == "sleep"
    needed = int(pause[1]) + int(settings()["DAMBA_GRACEFUL_TIMEOUT"])
    assert spec["terminationGracePeriodSeconds"] > needed


def test_pods_run_as_image_user():
    """Damba's pods run as the Dockerfile's user, never as root, on a read-only root."""
    user = [args for keyword, args in dockerfile_instructions() if keyword == "USER"][
        -1
    ]
    uid = int(user.partition(":")[0])
    assert DOCKERFILE.is_file()
    for document in everything():
        if document["kind"] != "Deployment":
            continue
        pod = document["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == uid
        for container in pod["containers"]:
            assert container["securityContext"]["readOnlyRootFilesystem"] is True
            mounts = {m["mountPath"] for m in container["volumeMounts"]}
            assert "/tmp" in mounts
