"""mlkv-server under load, through an independent client (Python grpcio) against the real binary:

- 240 streams open at once, each equal to what `mlkv generate` computes for the same seed;
- deadlines and client cancels under load, on running and on still-queued requests: each call
  ends DEADLINE_EXCEEDED or CANCELLED, every KV block returns (GetLoad) and the engine serves on;
- SIGTERM under load: health turns NOT_SERVING, new calls get UNAVAILABLE, every request in
  flight (queued ones too) completes within the grace period, and the exit code is 0.

Environment: as server_process.py.
"""
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

# Skips this module when grpcio, the stubs or the binaries are missing.
from server_process import (ServerProcess, cli_generate, grpc, health_pb2, mlkv_pb2,
                            write_model)

KV_CACHE_BYTES = "32000000"  # 3,906 blocks of 16 tokens: no test here runs out


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return write_model(tmp_path_factory.mktemp("server_load"))


def prompt(i):
    return [1 + (i * 31 + k * 17) % 96 for k in range(3 + i % 37)]


def request(i, max_tokens, **sampling):
    return mlkv_pb2.GenerateRequest(prompt_token_ids=prompt(i), max_tokens=max_tokens,
                                    ignore_eos=True, **sampling)


class Stream:
    """One Generate call read to its end: its tokens, logprobs, result and status code."""

    def __init__(self, call):
        self.call = call
        self.tokens, self.logprobs, self.result, self.code = [], [], None, None

    def read(self, after_first=None):
        """Reads every message; `after_first` runs once the first one has arrived."""
        try:
            for message in self.call:
                if message.HasField("delta"):
                    self.tokens += message.delta.token_ids
                    self.logprobs += [lp.logprob for lp in message.delta.logprobs]
                else:
                    self.result = message.result
                if after_first:
                    after_first()
                    after_first = None
            self.code = grpc.StatusCode.OK
        except grpc.RpcError as error:
            self.code = error.code()
        return self


def wait_until(condition, seconds=20):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return False


def idle(stub):
    load = stub.GetLoad(mlkv_pb2.GetLoadRequest(), timeout=10)
    return load.num_running == 0 and load.num_waiting == 0 and load.num_used_blocks == 0


def live_requests(stub):
    load = stub.GetLoad(mlkv_pb2.GetLoadRequest(), timeout=10)
    return load.num_running + load.num_waiting


def health(server):
    """The overall health status, or None while the server does not answer."""
    try:
        return server.health.Check(health_pb2.HealthCheckRequest(), timeout=10).status
    except grpc.RpcError:
        return None


def test_240_concurrent_streams_equal_the_cli(model_dir):
    count, max_tokens = 240, 24
    greedy = dict(temperature=0.0, logprobs=0)
    sampled = dict(temperature=0.8, top_k=40, seed=11)
    server = ServerProcess(model_dir, "--kv-cache-bytes", KV_CACHE_BYTES)
    try:
        # Every call has its first delta before any is read further: all 240 are open at once.
        opened = threading.Barrier(count, timeout=60)
        with ThreadPoolExecutor(max_workers=count) as pool:
            streams = list(pool.map(
                lambda i: Stream(server.stub.Generate(
                    request(i, max_tokens, **(greedy if i % 2 == 0 else sampled)),
                    timeout=60)).read(after_first=opened.wait),
                range(count)))
        assert wait_until(lambda: idle(server.stub))
    finally:
        assert server.stop() == 0
    flags = ["--max-tokens", str(max_tokens), "--ignore-eos"]
    expected_greedy = cli_generate(model_dir, [prompt(i) for i in range(0, count, 2)], *flags)
    expected_sampled = cli_generate(model_dir, [prompt(i) for i in range(1, count, 2)], *flags,
                                    "--temperature", "0.8", "--top-k", "40", "--seed", "11")
    for i, stream in enumerate(streams):
        expected = (expected_greedy if i % 2 == 0 else expected_sampled)[i // 2]
        assert stream.code == grpc.StatusCode.OK, i
        assert stream.tokens == expected["token_ids"], i
        assert stream.result.finish_reason == mlkv_pb2.FINISH_REASON_LENGTH, i
        assert stream.result.usage.completion_tokens == max_tokens, i
        if i % 2 == 0:
            assert stream.logprobs == pytest.approx(expected["logprobs"], abs=1e-5), i


def test_deadlines_and_cancels_under_load_free_every_block(model_dir):
    # 8 run at once, so most long requests are still queued when their deadline passes.
    server = ServerProcess(model_dir, "--kv-cache-bytes", KV_CACHE_BYTES, "--max-num-seqs", "8")
    try:
        # Long enough (about 2,000 engine steps) to outlive the deadlines and cancels below.
        calls = {"deadline": [], "cancel": [], "short": []}
        for i in range(48):
            kind = ("deadline", "cancel", "short")[i % 3]
            max_tokens = 8 if kind == "short" else 2000
            timeout = 0.5 if kind == "deadline" else 60
            calls[kind].append(
                server.stub.Generate(request(i, max_tokens, temperature=0.0), timeout=timeout))
        cancels = threading.Timer(0.5, lambda: [c.cancel() for c in calls["cancel"]])
        cancels.start()
        with ThreadPoolExecutor(max_workers=48) as pool:
            streams = {kind: list(pool.map(lambda c: Stream(c).read(), group))
                       for kind, group in calls.items()}
        cancels.join()
        assert [s.code for s in streams["deadline"]] == [grpc.StatusCode.DEADLINE_EXCEEDED] * 16
        assert [s.code for s in streams["cancel"]] == [grpc.StatusCode.CANCELLED] * 16
        # Short ones ran between long ones, and those queued behind them once they were aborted.
        assert [s.code for s in streams["short"]] == [grpc.StatusCode.OK] * 16
        assert all(len(s.tokens) == 8 for s in streams["short"])
        assert wait_until(lambda: idle(server.stub)), \
            server.stub.GetLoad(mlkv_pb2.GetLoadRequest(), timeout=10)
        # The engine serves on, and still computes the same.
        after = Stream(server.stub.Generate(request(100, 16, temperature=0.0),
                                            timeout=60)).read()
        [expected] = cli_generate(model_dir, [prompt(100)], "--max-tokens", "16", "--ignore-eos")
        assert after.code == grpc.StatusCode.OK
        assert after.tokens == expected["token_ids"]
    finally:
        assert server.stop() == 0


def test_sigterm_under_load_drains_in_flight_requests_and_exits_zero(model_dir):
    count, max_tokens, grace = 64, 600, 30
    # 16 run at once: at SIGTERM 48 requests are still queued, and they must complete too.
    server = ServerProcess(model_dir, "--kv-cache-bytes", KV_CACHE_BYTES, "--max-num-seqs", "16",
                           "--shutdown-grace-seconds", str(grace))
    try:
        pool = ThreadPoolExecutor(max_workers=count)
        futures = [pool.submit(lambda i=i: Stream(server.stub.Generate(
            request(i, max_tokens, temperature=0.0), timeout=120)).read()) for i in range(count)]
        # Every request is in the engine (a call still on its way would rightly be refused).
        assert wait_until(lambda: live_requests(server.stub) == count)
        server.proc.send_signal(signal.SIGTERM)
        signalled = time.time()
        assert wait_until(lambda: health(server) == health_pb2.HealthCheckResponse.NOT_SERVING)
        late = Stream(server.stub.Generate(request(1000, 4, temperature=0.0), timeout=10)).read()
        assert late.code == grpc.StatusCode.UNAVAILABLE

        streams = [f.result(timeout=grace + 30) for f in futures]
        pool.shutdown()
        # Each finished of itself (LENGTH, not ABORT): the drain let it run to its end.
        assert [s.code for s in streams] == [grpc.StatusCode.OK] * count
        assert all(s.result.finish_reason == mlkv_pb2.FINISH_REASON_LENGTH for s in streams)
        assert all(len(s.tokens) == max_tokens for s in streams)
        assert server.wait(timeout=grace + 30) == 0, server.log()
        assert time.time() - signalled < grace
        assert "draining" in server.log()
    finally:
        server.kill()
