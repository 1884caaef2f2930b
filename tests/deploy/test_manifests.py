"""deploy/k8s, offline: every overlay renders with kustomize, its built-in objects pass the
Kubernetes API schemas (kubernetes-validate), its custom resources have the structure their
controllers read, and the objects refer to each other consistently (selectors, port names, scale
targets, drain timing, security context). test_against_server.py checks the same objects against
the real mlkv-server."""
import json
import os
from pathlib import Path

import pytest

import deploy_lib
from deploy_lib import by_kind, one, server_container

OVERLAYS = deploy_lib.overlays()

# The custom resources the overlays use, and where their schemas come from.
CUSTOM_KINDS = {
    "ServiceMonitor": "monitoring.coreos.com (Prometheus Operator)",
    "ScaledObject": "keda.sh (KEDA)",
    "InferencePool": "inference.networking.k8s.io (Gateway API Inference Extension)",
}

try:
    import kubernetes_validate
except ImportError:
    kubernetes_validate = None


def _newest_kubernetes():
    from kubernetes_validate import utils
    return max(utils.all_versions(), key=lambda v: tuple(int(x) for x in v.split(".")))


def test_overlays_exist():
    assert {"cpu", "gpu"} <= set(OVERLAYS), f"overlays found: {OVERLAYS}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_renders(rendered, overlay):
    objects = rendered(overlay)
    keys = [(o["apiVersion"], o["kind"], o["metadata"]["name"]) for o in objects]
    assert len(keys) == len(set(keys)), f"duplicate objects: {keys}"
    for kind in ("Deployment", "Service", "ConfigMap", "PersistentVolumeClaim",
                 "PodDisruptionBudget"):
        assert by_kind(objects, kind), f"{overlay} renders no {kind}"
    # Exactly one autoscaler: KEDA makes its own HPA, and two would fight over the replicas.
    scalers = by_kind(objects, "HorizontalPodAutoscaler") + by_kind(objects, "ScaledObject")
    assert len(scalers) == 1, f"{overlay}: {len(scalers)} autoscalers"


def test_base_renders(kubectl):
    objects = deploy_lib.render(kubectl, deploy_lib.K8S / "base")
    assert one(objects, "Deployment")["metadata"]["name"] == "mlkv-server"


def test_schema_validator_is_not_vacuous():
    """kubernetes-validate in strict mode must reject an unknown field and a wrong type, or the
    schema test below would prove nothing."""
    if kubernetes_validate is None:
        pytest.skip("kubernetes-validate is not installed (scripts/install-deps.sh)")
    bad = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"},
           "spec": {"ports": [{"port": "not-a-number"}], "bogusField": 1}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, _newest_kubernetes(), strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_builtin_objects_pass_kubernetes_schemas(rendered, overlay):
    if kubernetes_validate is None:
        pytest.skip("kubernetes-validate is not installed (scripts/install-deps.sh)")
    errors = []
    checked = 0
    for obj in rendered(overlay):
        if obj["kind"] in CUSTOM_KINDS:
            continue
        for version in (deploy_lib.MIN_KUBERNETES, _newest_kubernetes()):
            try:
                kubernetes_validate.validate(obj, version, strict=True)
                checked += 1
            except kubernetes_validate.ValidationError as e:
                path = "/".join(str(p) for p in e.path)
                errors.append(f"{obj['kind']}/{obj['metadata']['name']} (Kubernetes {version}) "
                              f"at {path}: {e.message}")
            except kubernetes_validate.SchemaNotFoundError:
                errors.append(f"{obj['kind']} {obj['apiVersion']}: no schema in Kubernetes "
                              f"{version} (not a built-in kind?)")
    assert not errors, "\n".join(errors)
    assert checked


def _crd_schema_dir():
    """MLKV_CRD_SCHEMA_DIR: JSON schemas named <kind>.json (lower case), e.g. exported from a
    cluster's CRDs (`.spec.versions[].schema.openAPIV3Schema`), for the custom resources."""
    d = os.environ.get("MLKV_CRD_SCHEMA_DIR")
    return Path(d) if d else None


def test_custom_resources_against_published_schemas(rendered):
    """The custom resources against their projects' schemas where one is at hand offline; the
    rest are listed by name (their structure is still checked by the tests below)."""
    found = {}
    for overlay in OVERLAYS:
        for obj in rendered(overlay):
            if obj["kind"] in CUSTOM_KINDS:
                found.setdefault((obj["kind"], obj["apiVersion"], obj["metadata"]["name"]),
                                 []).append(overlay)
    assert found, "no custom resources rendered"
    schema_dir = _crd_schema_dir()
    unchecked = []
    for (kind, api_version, name), where in sorted(found.items()):
        schema_file = schema_dir / f"{kind.lower()}.json" if schema_dir else None
        if schema_file is None or not schema_file.exists():
            unchecked.append(f"{kind} {api_version} '{name}' ({', '.join(where)})")
            continue
        import jsonschema
        schema = json.loads(schema_file.read_text())
        for overlay in where:
            obj = next(o for o in rendered(overlay)
                       if o["kind"] == kind and o["metadata"]["name"] == name)
            jsonschema.validate(obj, schema)
    if unchecked:
        pytest.skip("no published schema available offline (set MLKV_CRD_SCHEMA_DIR), unchecked "
                    "against one: " + "; ".join(unchecked))


def _pod_labels(objects):
    return one(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]


def _selects(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_references_are_consistent(rendered, overlay):
    objects = rendered(overlay)
    deployment = one(objects, "Deployment")
    pod, container = server_container(objects)
    labels = _pod_labels(objects)
    assert _selects(deployment["spec"]["selector"]["matchLabels"], labels)
    container_ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert {"grpc", "metrics"} <= set(container_ports), container_ports

    service = next(s for s in by_kind(objects, "Service")
                   if s["metadata"]["name"] == "mlkv-server")
    assert _selects(service["spec"]["selector"], labels), "the Service selects no server pod"
    service_ports = {p["name"]: p for p in service["spec"]["ports"]}
    for port in service_ports.values():
        target = port["targetPort"]
        assert target in container_ports or target in container_ports.values(), \
            f"Service port {port['name']} targets {target}, which the container does not expose"
    if "tls" not in overlay:
        assert service_ports["grpc"].get("appProtocol") == "kubernetes.io/h2c"

    pdb = one(objects, "PodDisruptionBudget")
    assert _selects(pdb["spec"]["selector"]["matchLabels"], labels)

    for scaler in by_kind(objects, "HorizontalPodAutoscaler") + by_kind(objects, "ScaledObject"):
        ref = scaler["spec"]["scaleTargetRef"]
        assert ref.get("kind", "Deployment") == "Deployment"
        assert ref["name"] == deployment["metadata"]["name"]

    for claim in [v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"]
                  if "persistentVolumeClaim" in v]:
        assert claim in {c["metadata"]["name"] for c in by_kind(objects, "PersistentVolumeClaim")}
    mounted = {m["name"] for m in container["volumeMounts"]}
    assert mounted <= {v["name"] for v in pod["volumes"]}

    # The probes ask the gRPC port (or, with TLS, connect to it).
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        spec = container[probe]
        handler = spec.get("grpc") or spec.get("tcpSocket")
        assert handler, f"{probe}: neither grpc nor tcpSocket"
        port = handler["port"]
        assert port in (container_ports["grpc"], "grpc"), f"{probe} asks port {port}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_custom_resource_structure(rendered, overlay):
    """What each controller reads, checked without its schema."""
    objects = rendered(overlay)
    labels = _pod_labels(objects)
    _, container = server_container(objects)
    container_ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    services = by_kind(objects, "Service")

    for monitor in by_kind(objects, "ServiceMonitor"):
        assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
        selector = monitor["spec"]["selector"]["matchLabels"]
        matched = [s for s in services if _selects(selector, s["metadata"].get("labels", {}))]
        assert len(matched) == 1, f"ServiceMonitor selects {len(matched)} Services"
        names = {p["name"] for p in matched[0]["spec"]["ports"]}
        for endpoint in monitor["spec"]["endpoints"]:
            assert endpoint["port"] in names, f"ServiceMonitor scrapes port {endpoint['port']}"
            assert endpoint["port"] == "metrics"
            assert endpoint.get("path", "/metrics") == "/metrics"

    for scaled in by_kind(objects, "ScaledObject"):
        assert scaled["apiVersion"] == "keda.sh/v1alpha1"
        spec = scaled["spec"]
        assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
        for trigger in spec["triggers"]:
            assert trigger["type"] == "prometheus"
            meta = trigger["metadata"]
            assert meta["serverAddress"].startswith(("http://", "https://"))
            float(meta["threshold"])  # KEDA takes the threshold as a string holding a number
            assert isinstance(meta["threshold"], str)
            assert "mlkv_" in meta["query"]

    for pool in by_kind(objects, "InferencePool"):
        assert pool["apiVersion"] == "inference.networking.k8s.io/v1"
        spec = pool["spec"]
        assert _selects(spec["selector"]["matchLabels"], labels), "the pool selects no pod"
        assert [p["number"] for p in spec["targetPorts"]] == [container_ports["grpc"]]
        assert spec.get("appProtocol") == "kubernetes.io/h2c"
        ref = spec["endpointPickerRef"]
        assert ref["name"] and 1 <= ref["port"]["number"] <= 65535
        assert ref.get("failureMode", "FailClose") in ("FailOpen", "FailClose")
        epp = deploy_lib.flag_map(
            pool["metadata"]["annotations"]["mlkv-serve/endpoint-picker-args"].split())
        assert epp["pool-name"] == pool["metadata"]["name"]
        assert int(epp["model-server-metrics-port"]) == container_ports["metrics"]

    for hpa in by_kind(objects, "HorizontalPodAutoscaler"):
        assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
        names = [m["pods"]["metric"]["name"] for m in hpa["spec"]["metrics"] if m["type"] == "Pods"]
        assert "mlkv_num_requests_waiting" in names


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_drain_fits_in_termination_grace(rendered, overlay):
    pod, container = server_container(rendered(overlay))
    flags = deploy_lib.flag_map(deploy_lib.container_argv(rendered(overlay)))
    drain = float(flags.get("shutdown-grace-seconds") or 30)  # the server's default is 30
    pre_stop = container.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
    needed = pre_stop + drain + deploy_lib.SERVER_FINAL_DELIVERY_SECONDS
    grace = pod.get("terminationGracePeriodSeconds", 30)
    assert needed < grace, (f"preStop {pre_stop} s + drain {drain} s + "
                            f"{deploy_lib.SERVER_FINAL_DELIVERY_SECONDS} s > "
                            f"terminationGracePeriodSeconds {grace}")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_security_context(rendered, overlay):
    pod, container = server_container(rendered(overlay))
    pod_sc = pod.get("securityContext", {})
    sc = container.get("securityContext", {})
    assert pod_sc.get("runAsNonRoot") is True
    assert pod_sc.get("runAsUser", 0) != 0
    assert sc.get("readOnlyRootFilesystem") is True
    assert sc.get("allowPrivilegeEscalation") is False
    assert "ALL" in sc.get("capabilities", {}).get("drop", [])
    models = [m for m in container["volumeMounts"] if m["mountPath"] == "/models"]
    assert models and models[0].get("readOnly") is True


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_resources(rendered, overlay):
    _, container = server_container(rendered(overlay))
    resources = container["resources"]
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(resources[kind])
    gpus = resources["limits"].get("nvidia.com/gpu")
    device = deploy_lib.flag_map(deploy_lib.container_argv(rendered(overlay))).get("device")
    if overlay.startswith("gpu"):
        assert gpus and int(gpus) >= 1, f"{overlay} asks for no nvidia.com/gpu"
        assert resources["requests"].get("nvidia.com/gpu") == gpus
        assert device == "cuda", f"{overlay} runs with --device={device}"
    else:
        assert gpus is None, f"{overlay} asks for GPUs"
        assert device in (None, "cpu"), f"{overlay} runs with --device={device}"
