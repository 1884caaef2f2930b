"""What the server's Python tests share: a small random model made by `mlkv random-model`, the real
mlkv-server binary on a loopback port, `mlkv generate` as the reference, and the generated stubs.

Importing this module skips the importing test module when grpcio, the stubs or the binaries are
missing (environment: MLKV_SERVER_BIN, MLKV_BIN, MLKV_PYTHON_STUBS).
"""
import json
import os
import re
import subprocess
import sys
import threading
import time

import pytest

try:
    import grpc
except ImportError:  # the importing module skips, and says why
    pytest.skip("python3-grpcio is not installed", allow_module_level=True)

SERVER_BIN = os.environ.get("MLKV_SERVER_BIN", "")
MLKV_BIN = os.environ.get("MLKV_BIN", "")
STUBS = os.environ.get("MLKV_PYTHON_STUBS", "")
if not (SERVER_BIN and os.path.exists(SERVER_BIN) and MLKV_BIN and STUBS):
    pytest.skip("MLKV_SERVER_BIN, MLKV_BIN or MLKV_PYTHON_STUBS not given", allow_module_level=True)
sys.path.insert(0, STUBS)
from mlkv.v1 import mlkv_pb2, mlkv_pb2_grpc  # noqa: E402,F401
import health_pb2, health_pb2_grpc  # noqa: E402,F401

# A small MLKV shape: 4 layers sharing 2 KV layers of 2 heads.
CONFIG = {
    "architectures": ["GPTNeoXForCausalLM"], "model_type": "gpt_neox",
    "hidden_size": 64, "num_attention_heads": 4, "num_hidden_layers": 4,
    "intermediate_size": 96, "vocab_size": 97, "max_position_embeddings": 2048,
    "rotary_pct": 0.5, "rotary_emb_base": 10000, "layer_norm_eps": 1e-5,
    "use_parallel_residual": True, "hidden_act": "gelu", "tie_word_embeddings": False,
    "bos_token_id": 0, "eos_token_id": 0, "num_key_value_heads": 2, "num_key_value_layers": 2,
}
# One OpenMP thread per process: tests run side by side on few cores.
ENV = dict(os.environ, OMP_NUM_THREADS="1", OMP_WAIT_POLICY="passive")


def write_model(root, seed=3, **overrides):
    """CONFIG (with `overrides`) with random weights of `seed`, written under the directory `root`."""
    config = root / "config.json"
    config.write_text(json.dumps(dict(CONFIG, **overrides)))
    out = root / "tiny"
    subprocess.run([MLKV_BIN, "random-model", "--config", str(config), "--seed", str(seed),
                    "--out", str(out)], check=True, env=ENV, capture_output=True)
    return out


class ServerProcess:
    """mlkv-server on 127.0.0.1 (free ports for the API and the metrics, so that tests run side by
    side) with `flags`, its log gathered as it comes."""

    def __init__(self, model_dir, *flags):
        self.proc = subprocess.Popen(
            [SERVER_BIN, "--model", str(model_dir), "--host", "127.0.0.1", "--port", "0",
             "--metrics-port", "0", "--threads", "1", *flags],
            stderr=subprocess.PIPE, text=True, env=ENV)
        self._lines = []
        self.port = None
        deadline = time.time() + 60
        while self.port is None and time.time() < deadline:
            line = self.proc.stderr.readline()
            if not line:
                break
            self._lines.append(line)
            match = re.search(r"serving .* on 127\.0\.0\.1:(\d+)", line)
            if match:
                self.port = int(match.group(1))
        assert self.port, "mlkv-server did not start:\n" + self.log()
        # Keep reading the log so that the server never blocks on a full pipe.
        self._reader = threading.Thread(target=lambda: self._lines.extend(self.proc.stderr),
                                        daemon=True)
        self._reader.start()
        self.channel = grpc.insecure_channel(f"127.0.0.1:{self.port}")
        self.stub = mlkv_pb2_grpc.MlkvServiceStub(self.channel)
        self.health = health_pb2_grpc.HealthStub(self.channel)

    def log(self):
        return "".join(self._lines)

    def wait(self, timeout):
        """The exit code, once the process has ended and its log is read."""
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=10)
        return code

    def stop(self):
        """SIGTERM, and the exit code (a graceful stop is 0)."""
        self.channel.close()
        if self.proc.poll() is None:
            self.proc.terminate()
        return self.wait(timeout=60)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def cli_generate(model_dir, prompts, *flags):
    """`mlkv generate` on every prompt at once: one output dict per prompt, in order."""
    args = [MLKV_BIN, "generate", "--model", str(model_dir), "--format", "json", *flags]
    for prompt in prompts:
        args += ["--token-ids", ",".join(map(str, prompt))]
    out = json.loads(subprocess.run(args, check=True, env=ENV, capture_output=True,
                                    text=True).stdout)
    return out["outputs"] if len(prompts) > 1 else [out]
