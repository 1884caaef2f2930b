"""Helpers of the deployment checks: find the tools, render the Kustomize overlays, turn a rendered
Deployment into the argv the kubelet would run, parse Dockerfiles, and talk to a running server
(grpc.health.v1 without generated stubs, /metrics over plain HTTP)."""
import os
import re
import shutil
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
DOCKER = REPO / "deploy" / "docker"

# The Kubernetes releases the manifests are validated against: the oldest they support (the
# preStop `sleep` action is on by default from 1.30) and the newest kubernetes-validate bundles.
MIN_KUBERNETES = "1.30.0"

# What the server adds to --shutdown-grace-seconds before it exits: the wait for the last
# messages of aborted requests (docs/api.md, Shutdown).
SERVER_FINAL_DELIVERY_SECONDS = 2.0


def find_tool(name, env_var):
    """A tool from env_var, else beside this Python (the project's .venv), else on PATH."""
    explicit = os.environ.get(env_var)
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    beside = Path(sys.executable).parent / name
    if beside.exists() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which(name)


def overlays():
    return sorted(p.name for p in (K8S / "overlays").iterdir()
                  if (p / "kustomization.yaml").is_file())


def render(kubectl, path):
    """The objects `kubectl kustomize path` renders; raises with kustomize's message on failure."""
    proc = subprocess.run([kubectl, "kustomize", str(path)], capture_output=True, text=True,
                          timeout=120)
    if proc.returncode != 0:
        raise AssertionError(f"kubectl kustomize {path} failed:\n{proc.stderr}")
    # Kustomize warns on deprecated fields (commonLabels, patchesStrategicMerge, ...), which a
    # later release drops: keep the output clean.
    if proc.stderr.strip():
        raise AssertionError(f"kubectl kustomize {path} warned:\n{proc.stderr}")
    return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]


def by_kind(objects, kind):
    return [o for o in objects if o.get("kind") == kind]


def one(objects, kind):
    found = by_kind(objects, kind)
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def server_container(objects):
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    containers = [c for c in pod["containers"] if c["name"] == "mlkv-server"]
    assert len(containers) == 1, "the Deployment has no container named mlkv-server"
    return pod, containers[0]


def cpu_quantity(text):
    """A CPU quantity ("4", "500m") as a float of cores."""
    text = str(text)
    return float(text[:-1]) / 1000 if text.endswith("m") else float(text)


def container_env(objects, container):
    """The environment the kubelet gives the container: envFrom ConfigMaps, then env (literal
    values and limits.cpu / requests.cpu resource references, rounded up as with divisor 1)."""
    configmaps = {c["metadata"]["name"]: c.get("data", {}) for c in by_kind(objects, "ConfigMap")}
    env = {}
    for source in container.get("envFrom", []):
        ref = source.get("configMapRef")
        assert ref, f"envFrom source {source} is not a ConfigMap the test knows how to read"
        assert ref["name"] in configmaps, f"envFrom names ConfigMap {ref['name']}, not rendered"
        env.update({source.get("prefix", "") + k: str(v)
                    for k, v in configmaps[ref["name"]].items()})
    for var in container.get("env", []):
        if "value" in var:
            env[var["name"]] = str(var["value"])
            continue
        field = var.get("valueFrom", {}).get("resourceFieldRef")
        assert field, f"env {var['name']}: only values and resourceFieldRef are understood here"
        kind, resource = field["resource"].split(".")
        value = container["resources"][kind][resource]
        divisor = cpu_quantity(field.get("divisor", "1"))
        cores = cpu_quantity(value) / divisor
        env[var["name"]] = str(int(-(-cores // 1)))  # ceil, as the kubelet rounds
    return env


_VAR = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def expand(arg, env):
    """Kubernetes' $(VAR) expansion of one argument (an unknown name stays as written)."""
    return _VAR.sub(lambda m: env.get(m.group(1), m.group(0)), arg)


def container_argv(objects):
    """The container's command line after $(VAR) expansion, without the entrypoint."""
    _, container = server_container(objects)
    assert "command" not in container, "the image's ENTRYPOINT (mlkv-server) is expected to run"
    env = container_env(objects, container)
    argv = [expand(a, env) for a in container.get("args", [])]
    unresolved = [a for a in argv if _VAR.search(a)]
    assert not unresolved, f"args with an unset $(VAR): {unresolved}"
    return argv


def flag_map(argv):
    """--name=value / --name value / --switch, as {name: value or None}; repeated flags keep the
    last value, as mlkv-server does."""
    flags = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        assert arg.startswith("--"), f"positional argument {arg!r}: mlkv-server takes none"
        name, eq, value = arg[2:].partition("=")
        if not eq and i + 1 < len(argv) and not argv[i + 1].startswith("--"):
            value = argv[i + 1]
            i += 1
        flags[name] = value if (eq or value) else None
        i += 1
    return flags


def replace_flag(argv, name, value):
    """argv with every occurrence of --name replaced by --name=value (appended if absent)."""
    out = []
    i = 0
    found = False
    while i < len(argv):
        arg = argv[i]
        if arg == f"--{name}" or arg.startswith(f"--{name}="):
            if arg == f"--{name}" and i + 1 < len(argv) and not argv[i + 1].startswith("--"):
                i += 1
            if not found:
                out.append(f"--{name}={value}")
                found = True
        else:
            out.append(arg)
        i += 1
    if not found:
        out.append(f"--{name}={value}")
    return out


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def health_request(service):
    """A serialized grpc.health.v1.HealthCheckRequest (field 1: service)."""
    data = service.encode()
    if not data:
        return b""
    assert len(data) < 128
    return b"\x0a" + bytes([len(data)]) + data


def health_status(channel, service, timeout=2.0):
    """grpc.health.v1.Health/Check: the status number (1 SERVING, 2 NOT_SERVING, 3
    SERVICE_UNKNOWN) or the gRPC error it raised."""
    import grpc
    check = channel.unary_unary("/grpc.health.v1.Health/Check")
    try:
        reply = check(health_request(service), timeout=timeout)
    except grpc.RpcError as e:
        return e.code()
    # HealthCheckResponse{status = 1 (varint)}; an empty message is UNKNOWN (0).
    if not reply:
        return 0
    assert reply[0] == 0x08, f"unexpected HealthCheckResponse bytes {reply!r}"
    return reply[1]


def http_get(url, timeout=3.0):
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return resp.status, resp.read().decode("utf-8", "replace")


def metric_names(exposition):
    """The metric names of a Prometheus text exposition (samples and # TYPE lines)."""
    names = set()
    for line in exposition.splitlines():
        if line.startswith("# TYPE "):
            names.add(line.split()[2])
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{\s]", line, maxsplit=1)[0])
    return names


def dockerfile_instructions(path):
    """[(stage name or None, INSTRUCTION, arguments)] with continuations joined, comments
    dropped."""
    text = Path(path).read_text()
    logical = []
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if current and line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        current += line
        logical.append(current.strip())
        current = ""
    out = []
    stage = None
    for line in logical:
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            parts = rest.split()
            stage = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else None
        out.append((stage, keyword, rest.strip()))
    return out


def apt_packages(run_args):
    """The package names an `apt-get install ...` inside a RUN line names."""
    packages = []
    for segment in re.split(r"&&|;", run_args):
        words = segment.split()
        if "apt-get" in words and "install" in words:
            for word in words[words.index("install") + 1:]:
                if not word.startswith("-"):
                    packages.append(word)
    return packages


def install_deps_packages():
    """APT_PACKAGES of scripts/install-deps.sh."""
    text = (REPO / "scripts" / "install-deps.sh").read_text()
    block = re.search(r"APT_PACKAGES=\((.*?)\n\)", text, re.S)
    assert block, "scripts/install-deps.sh has no APT_PACKAGES=( ... ) list"
    packages = []
    for line in block.group(1).splitlines():
        line = line.split("#", 1)[0]
        packages.extend(line.split())
    return packages
