"""Each overlay's mlkv-server command line against the real binary (MLKV_SERVER_BIN): the exact
flags and values the manifests pass are accepted, and the server started with them on loopback
serves the health service the probes ask, exports every metric the autoscalers and the endpoint
picker read, and drains within the time the pod gives it.

The pod's volumes become local folders: the models volume a small random model (mlkv
random-model, configs/smoke-test.json) under the ConfigMap's model name, the TLS Secret a
self-signed certificate, the API-key Secret a file with one key. For the start on loopback only the
address, the ports, the KV budget and the thread count are changed (a smoke model on a shared
machine); the parse check keeps every value as rendered."""
import shutil
import signal
import socket
import subprocess
import time

import pytest

import deploy_lib
from deploy_lib import by_kind, server_container

OVERLAYS = deploy_lib.overlays()

try:
    import grpc
except ImportError:
    grpc = None


def _secret_files(secret, folder):
    """Local stand-ins for the Secrets the manifests mount."""
    folder.mkdir(parents=True, exist_ok=True)
    if secret == "mlkv-server-tls":
        if not shutil.which("openssl"):
            pytest.skip("openssl is needed to make a test certificate")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
                        "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
                        "-keyout", str(folder / "tls.key"), "-out", str(folder / "tls.crt")],
                       check=True, capture_output=True, timeout=60)
        shutil.copy(folder / "tls.crt", folder / "ca.crt")
    elif secret == "mlkv-server-api-keys":
        (folder / "api-keys").write_text("deploy-test-key-0123456789abcdef\n")
    else:
        raise AssertionError(f"the manifests mount Secret {secret}, which this test cannot fake")
    return folder


def _local_argv(objects, tmp_path, models_dir):
    """The container's argv with every path under a mounted volume moved to a local folder."""
    pod, container = server_container(objects)
    volumes = {v["name"]: v for v in pod["volumes"]}
    mapping = {}
    for mount in container["volumeMounts"]:
        volume = volumes[mount["name"]]
        if "persistentVolumeClaim" in volume:
            mapping[mount["mountPath"]] = str(models_dir)
        elif "secret" in volume:
            name = volume["secret"]["secretName"]
            mapping[mount["mountPath"]] = str(_secret_files(name, tmp_path / "secrets" / name))
    argv = []
    for arg in deploy_lib.container_argv(objects):
        for mount_path, local in sorted(mapping.items(), key=lambda kv: -len(kv[0])):
            if mount_path + "/" in arg or arg.endswith(mount_path):
                arg = arg.replace(mount_path, local)
                break
        argv.append(arg)
    return argv


def _model_name(objects):
    flags = deploy_lib.flag_map(deploy_lib.container_argv(objects))
    model = flags["model"]
    assert model.startswith("/models/"), f"--model {model} is not under the models volume"
    return model[len("/models/"):].strip("/")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_manifest_flags_are_accepted(rendered, server_bin, tmp_path, overlay):
    """The rendered args, values and all, get past mlkv-server's flag parsing: with an empty
    models folder it must fail on the model (exit 1), never on a flag (exit 2, with usage)."""
    objects = rendered(overlay)
    empty = tmp_path / "empty-models"
    empty.mkdir()
    argv = _local_argv(objects, tmp_path, empty)
    proc = subprocess.run([server_bin] + argv, capture_output=True, text=True, timeout=60)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1 and "usage:" not in output, (
        f"mlkv-server rejected the {overlay} flags (exit {proc.returncode}):\n"
        f"{' '.join(argv)}\n{output[-3000:]}")


def _wait_for_port(port, proc, deadline):
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def _metrics_the_manifests_read(objects):
    import re
    names = set()
    for hpa in by_kind(objects, "HorizontalPodAutoscaler"):
        for metric in hpa["spec"]["metrics"]:
            if metric["type"] == "Pods":
                names.add(metric["pods"]["metric"]["name"])
    for scaled in by_kind(objects, "ScaledObject"):
        for trigger in scaled["spec"]["triggers"]:
            names.update(re.findall(r"\bmlkv_[a-zA-Z0-9_]+", trigger["metadata"]["query"]))
    for pool in by_kind(objects, "InferencePool"):
        epp = deploy_lib.flag_map(
            pool["metadata"]["annotations"]["mlkv-serve/endpoint-picker-args"].split())
        for flag, value in epp.items():
            if flag.endswith("-metric"):
                names.add(value.split("{")[0])
    return names


def _metrics_the_docs_name():
    import re
    text = (deploy_lib.REPO / "docs" / "deployment.md").read_text()
    return set(re.findall(r"`(mlkv_[a-z0-9_]+)", text))


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_server_serves_what_the_manifests_expect(rendered, server_bin, models_root, tmp_path,
                                                 overlay):
    if grpc is None:
        pytest.skip("python3-grpcio is not installed")
    objects = rendered(overlay)
    _, container = server_container(objects)
    models = models_root(_model_name(objects))
    argv = _local_argv(objects, tmp_path, models)
    flags = deploy_lib.flag_map(argv)
    port = deploy_lib.free_port()
    argv = deploy_lib.replace_flag(argv, "host", "127.0.0.1")
    argv = deploy_lib.replace_flag(argv, "port", str(port))
    metrics_port = None
    if "metrics-port" in flags:
        metrics_port = deploy_lib.free_port()
        argv = deploy_lib.replace_flag(argv, "metrics-port", str(metrics_port))
    argv = deploy_lib.replace_flag(argv, "kv-cache-bytes", str(64 << 20))
    argv = deploy_lib.replace_flag(argv, "threads", "1")
    if "device" in flags:  # the gpu overlays' cuda: this machine may have no GPU
        argv = deploy_lib.replace_flag(argv, "device", "cpu")

    log = tmp_path / "server.log"
    with open(log, "w") as log_file:
        proc = subprocess.Popen([server_bin] + argv, stdout=log_file, stderr=subprocess.STDOUT)
    try:
        started = _wait_for_port(port, proc, time.monotonic() + 120)
        assert started, f"mlkv-server did not listen:\n{' '.join(argv)}\n{log.read_text()[-3000:]}"

        if "tls-cert-file" in flags:
            root = open(flags.get("tls-client-ca-file") or flags["tls-cert-file"], "rb").read()
            channel = grpc.secure_channel(f"127.0.0.1:{port}",
                                          grpc.ssl_channel_credentials(root_certificates=root),
                                          options=[("grpc.ssl_target_name_override",
                                                    "localhost")])
        else:
            channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        with channel:
            # Each probe, as the kubelet would run it.
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                spec = container[probe]
                if "grpc" in spec:
                    service = spec["grpc"].get("service", "")
                    status = deploy_lib.health_status(channel, service)
                    assert status == 1, f"{probe}: Check({service!r}) answered {status}"
                else:
                    with socket.create_connection(("127.0.0.1", port), timeout=2):
                        pass

            needed = _metrics_the_manifests_read(objects)
            if overlay == "cpu":  # once: the metrics docs/deployment.md tells operators to watch
                needed |= _metrics_the_docs_name()
            if needed:
                assert metrics_port, f"the manifests read {sorted(needed)} but pass no --metrics-port"
            if metrics_port:
                status, body = deploy_lib.http_get(f"http://127.0.0.1:{metrics_port}/metrics")
                assert status == 200
                missing = needed - deploy_lib.metric_names(body)
                assert not missing, f"/metrics lacks {sorted(missing)}"

            # SIGTERM, as the kubelet sends after preStop: health turns NOT_SERVING (if we catch
            # it before an idle server exits) and the server exits 0 within its drain grace.
            grace = float(flags.get("shutdown-grace-seconds") or 30)
            begin = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            status = 1
            while status == 1 and proc.poll() is None and time.monotonic() < begin + 3:
                status = deploy_lib.health_status(channel, "", timeout=1)
                time.sleep(0.02)
            assert status != 1, "health still SERVING 3 s after SIGTERM"
        code = proc.wait(timeout=grace + deploy_lib.SERVER_FINAL_DELIVERY_SECONDS + 10)
        took = time.monotonic() - begin
        assert code == 0, f"exit {code} after SIGTERM:\n{log.read_text()[-3000:]}"
        assert took <= grace + deploy_lib.SERVER_FINAL_DELIVERY_SECONDS + 5
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
