"""mlkv-loadgen against the real mlkv-server (smoke-test model, loopback).

Checks that request and token counts are exact (ignore_eos), that they and the reported TTFT and
end-to-end latencies agree with the server's own counters (GetLoad, and the Prometheus metrics
when the server has them), that the plotting script turns a real run into PNGs, and that bad
input (unreachable server, a server that dies mid-run, malformed traces, impossible flags) ends
with a clear message, a non-zero exit and the partial results written.

Environment: MLKV_LOADGEN_BIN, MLKV_SERVER_BIN, MLKV_BIN, MLKV_PYTHON_STUBS, MLKV_PLOT_SCRIPT.
"""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "server"))
from server_process import (  # noqa: E402  (skips without stubs)
    ENV, MLKV_BIN, ServerProcess, mlkv_pb2)

LOADGEN = os.environ.get("MLKV_LOADGEN_BIN", "")
PLOT = os.environ.get("MLKV_PLOT_SCRIPT", "")
ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
if not (LOADGEN and os.path.exists(LOADGEN)):
    pytest.skip("MLKV_LOADGEN_BIN not given", allow_module_level=True)

REQUESTS, OUTPUT_LEN = 36, 8


def run_loadgen(*flags, timeout=120):
    return subprocess.run([LOADGEN, "--quiet", *flags], capture_output=True, text=True,
                          env=ENV, timeout=timeout)


def metrics_port(server):
    """The metrics port the server logged (ServerProcess asks for any free one), or None for a
    server without metrics."""
    deadline = time.time() + 10
    while time.time() < deadline:
        match = re.search(r"metrics http port (\d+)", server.log())
        if match:
            return int(match.group(1))
        time.sleep(0.1)
    return None


def scrape(port):
    """{name: value} of the Prometheus text, samples of one name summed over their labels."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name_labels, value = line.rsplit(" ", 1)
            name = name_labels.split("{", 1)[0]
            values[name] = values.get(name, 0.0) + float(value)
    return values


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("loadgen") / "smoke"
    subprocess.run([MLKV_BIN, "random-model", "--config",
                    os.path.join(ROOT, "configs", "smoke-test.json"), "--seed", "0",
                    "--out", str(out)], check=True, env=ENV, capture_output=True)
    return out


@pytest.fixture(scope="module")
def server(model_dir):
    proc = ServerProcess(model_dir, "--kv-cache-bytes", "20000000")
    yield proc
    assert proc.stop() == 0, proc.log()


def target(server):
    return f"127.0.0.1:{server.port}"


def check_counts(summary_path, requests_path, n, output_len):
    summary = json.loads(open(summary_path).read())
    assert "error" not in summary
    (point,) = summary["points"]
    assert point["completed"] == n and point["failed"] == 0, point
    assert point["output_tokens"] == n * output_len == point["expected_output_tokens"]
    for key in ("ttft_ms", "itl_ms", "tpot_ms", "e2e_ms"):
        stats = point[key]
        assert 0 <= stats["p50"] <= stats["p90"] <= stats["p99"] <= stats["max"], key
    assert point["ttft_ms"]["mean"] <= point["e2e_ms"]["mean"]
    lines = [json.loads(line) for line in open(requests_path)]
    assert len(lines) == n
    assert all(r["code"] == "OK" and r["output_tokens"] == output_len for r in lines)
    assert sum(r["prompt_tokens"] for r in lines) == point["input_tokens"]
    return point


@pytest.mark.parametrize("api", ["native", "kserve"])
def test_counts_match_the_server(server, tmp_path, api):
    port = metrics_port(server)
    before = scrape(port) if port else None
    result = run_loadgen("--target", target(server), "--api", api, "--concurrency", "6",
                         "--num-requests", str(REQUESTS), "--input-len", "uniform:4:40",
                         "--output-len", str(OUTPUT_LEN), "--seed", "5",
                         "--summary-json", str(tmp_path / "s.json"),
                         "--requests-jsonl", str(tmp_path / "r.jsonl"))
    if api == "kserve" and "UNIMPLEMENTED" in result.stderr:
        pytest.skip("this mlkv-server does not serve KServe v2 yet: " + result.stderr.strip())
    assert result.returncode == 0, result.stderr
    point = check_counts(tmp_path / "s.json", tmp_path / "r.jsonl", REQUESTS, OUTPUT_LEN)

    # Nothing left behind in the engine.
    load = server.stub.GetLoad(mlkv_pb2.GetLoadRequest(), timeout=10)
    assert load.num_running == 0 and load.num_waiting == 0

    if before is None:
        pytest.skip("this mlkv-server serves no Prometheus metrics: counts were checked against "
                    "GetLoad only")
    after = scrape(port)

    def delta(name):
        return after.get(name, 0.0) - before.get(name, 0.0)

    assert delta("mlkv_request_success_total") == REQUESTS
    assert delta("mlkv_generation_tokens_total") == point["output_tokens"]
    assert delta("mlkv_prompt_tokens_total") == point["input_tokens"]
    # The server times from receipt to its write; the client from its send to its read, so its
    # means are longer, by no more than the transport and the client's own scheduling.
    for metric, key in (("mlkv_time_to_first_token_seconds", "ttft_ms"),
                        ("mlkv_e2e_request_latency_seconds", "e2e_ms")):
        assert delta(metric + "_count") == REQUESTS, metric
        server_mean_ms = delta(metric + "_sum") / REQUESTS * 1e3
        assert server_mean_ms <= point[key]["mean"] + 0.5, (metric, server_mean_ms, point[key])
        assert point[key]["mean"] - server_mean_ms < 50, (metric, server_mean_ms, point[key])


def test_shared_prefixes_hit_the_prefix_cache(server, tmp_path):
    result = run_loadgen("--target", target(server), "--concurrency", "2", "--num-requests", "12",
                         "--shared-prefix-count", "2", "--shared-prefix-len", "64",
                         "--input-len", "8", "--output-len", "4",
                         "--summary-json", str(tmp_path / "s.json"))
    assert result.returncode == 0, result.stderr
    (point,) = json.loads((tmp_path / "s.json").read_text())["points"]
    assert point["completed"] == 12
    assert point["input_tokens"] == 12 * 72
    # Each prefix's 4 full blocks are computed once, then found: 10 later requests x 64 tokens.
    assert point["cached_prompt_tokens"] >= 10 * 64


def test_open_loop_sweep_and_trace_replay(server, tmp_path):
    trace = tmp_path / "trace.jsonl"
    trace.write_text("".join(json.dumps({"prompt_len": 5 + i, "output_len": 1 + i % 4}) + "\n"
                             for i in range(8)))
    result = run_loadgen("--target", target(server), "--request-rate", "40,inf",
                         "--arrival", "gamma", "--burstiness", "0.5", "--num-requests", "16",
                         "--trace", str(trace), "--summary-json", str(tmp_path / "s.json"),
                         "--summary-csv", str(tmp_path / "s.csv"))
    assert result.returncode == 0, result.stderr
    points = json.loads((tmp_path / "s.json").read_text())["points"]
    assert [p["request_rate"] for p in points] == [40, "inf"]
    for p in points:
        assert p["completed"] == 16
        assert p["output_tokens"] == 2 * sum(1 + i % 4 for i in range(8))
        assert p["input_tokens"] == 2 * sum(5 + i for i in range(8))
    csv = (tmp_path / "s.csv").read_text().splitlines()
    assert len(csv) == 3 and csv[0].startswith("mode,concurrency,request_rate,completed")


def test_duration_bound_stops_by_itself(server, tmp_path):
    start = time.time()
    result = run_loadgen("--target", target(server), "--concurrency", "2",
                         "--duration-seconds", "1", "--warmup-requests", "2",
                         "--output-len", "4", "--input-len", "8",
                         "--summary-json", str(tmp_path / "s.json"))
    assert result.returncode == 0, result.stderr
    assert time.time() - start < 30
    (point,) = json.loads((tmp_path / "s.json").read_text())["points"]
    assert point["completed"] >= 1 and point["failed"] == 0
    assert point["duration_s"] >= 1


def test_plots_from_a_real_run(server, tmp_path):
    if not PLOT:
        pytest.skip("MLKV_PLOT_SCRIPT not given")
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        pytest.skip("python3-matplotlib is not installed")
    result = run_loadgen("--target", target(server), "--concurrency", "1,4", "--num-requests", "8",
                         "--input-len", "16", "--output-len", "6",
                         "--summary-json", str(tmp_path / "sweep.json"))
    assert result.returncode == 0, result.stderr
    capacity = subprocess.run(
        [MLKV_BIN, "capacity", "--config", os.path.join(ROOT, "configs", "pythia-160m-mha-144.json"),
         "--config", os.path.join(ROOT, "configs", "pythia-160m-mlkv-2.json"),
         "--memory-bytes", "80e9", "--context-lens", "1024,2048", "--format", "json"],
        capture_output=True, text=True, check=True, env=ENV).stdout
    (tmp_path / "capacity.json").write_text(capacity)
    out = tmp_path / "charts"
    plot = subprocess.run([sys.executable, PLOT, "--loadgen", str(tmp_path / "sweep.json"),
                           "--capacity", str(tmp_path / "capacity.json"), "--out-dir", str(out)],
                          capture_output=True, text=True)
    assert plot.returncode == 0, plot.stderr
    for name in ("throughput_vs_load.png", "latency_vs_load.png", "max_concurrency.png"):
        data = (out / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000, name
    bad = subprocess.run([sys.executable, PLOT, "--loadgen", str(tmp_path / "capacity.json"),
                          "--out-dir", str(out)], capture_output=True, text=True)
    assert bad.returncode == 1 and "not an mlkv-loadgen --summary-json file" in bad.stderr


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_server(tmp_path):
    result = run_loadgen("--target", f"127.0.0.1:{free_port()}", "--concurrency", "1",
                         "--num-requests", "3", "--connect-timeout-seconds", "1",
                         "--summary-json", str(tmp_path / "s.json"))
    assert result.returncode == 1
    assert "cannot reach 127.0.0.1:" in result.stderr and "cannot connect" in result.stderr
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["points"] == [] and "cannot reach" in summary["error"]


def test_server_dying_mid_run_leaves_partial_results(model_dir, tmp_path):
    doomed = ServerProcess(model_dir, "--kv-cache-bytes", "20000000")
    loadgen = subprocess.Popen(
        [LOADGEN, "--quiet", "--target", f"127.0.0.1:{doomed.port}", "--concurrency", "4",
         "--duration-seconds", "120", "--input-len", "8", "--output-len", "64",
         "--summary-json", str(tmp_path / "s.json"), "--requests-jsonl", str(tmp_path / "r.jsonl")],
        stderr=subprocess.PIPE, text=True, env=ENV)
    time.sleep(2)
    doomed.proc.send_signal(signal.SIGKILL)
    doomed.wait(timeout=30)
    _, stderr = loadgen.communicate(timeout=60)
    assert loadgen.returncode == 1, stderr
    assert "UNAVAILABLE" in stderr and "stopped sending" in stderr
    summary = json.loads((tmp_path / "s.json").read_text())
    (point,) = summary["points"]
    assert point["completed"] >= 1 and point["failed"] >= 1
    assert point["errors_by_code"]["UNAVAILABLE"] >= 1 and "error" in summary
    lines = (tmp_path / "r.jsonl").read_text().splitlines()
    assert len(lines) == point["completed"] + point["failed"]


def test_malformed_trace_names_the_line(tmp_path):
    trace = tmp_path / "bad.jsonl"
    trace.write_text('{"prompt_len": 4, "output_len": 2}\n{"prompt_len": 4}\n')
    result = run_loadgen("--target", "127.0.0.1:1", "--concurrency", "1", "--num-requests", "1",
                         "--trace", str(trace))
    assert result.returncode == 2
    assert f"{trace}:2: output_len: missing" in result.stderr


@pytest.mark.parametrize("flags, message", [
    (["--concurrency", "2", "--request-rate", "3", "--num-requests", "1"], "exclude each other"),
    (["--concurrency", "2"], "--num-requests N and/or --duration-seconds S"),
    (["--num-requests", "2"], "--concurrency N (closed loop) or --request-rate R"),
    (["--concurrency", "2", "--num-requests", "1", "--burstiness", "2"], "--arrival and --burstiness"),
    (["--concurrency", "2", "--num-requests", "1", "--input-len", "normal:5"], "--input-len"),
    (["--concurrency", "x", "--num-requests", "1"], "--concurrency"),
])
def test_impossible_flags(flags, message):
    result = run_loadgen("--target", "127.0.0.1:1", *flags)
    assert result.returncode == 2
    assert message in result.stderr and "mlkv-loadgen:" in result.stderr
