"""mlkv-server's KServe v2 API through an independent client: NVIDIA's tritonclient[grpc] (pip).

Starts the real mlkv-server binary with a small random model that has a tokenizer and checks that
ModelInfer and decoupled ModelStreamInfer, called the way Triton's vLLM and TensorRT-LLM clients
call them (raw binary tensors), return what `mlkv generate` computes for the same request; that
metadata, readiness and configuration answer; and that errors come back as the protocol says.

Environment: as server_process.py; tritonclient must be importable (else the module skips).
"""
import json
import queue

import pytest

# Skips this module when grpcio, the stubs or the binaries are missing.
from server_process import ServerProcess, cli_generate, write_model

try:
    import numpy as np
    import tritonclient.grpc as triton
    from tritonclient.utils import InferenceServerException
except ImportError:
    pytest.skip("tritonclient[grpc] is not installed (scripts/install-deps.sh installs it)",
                allow_module_level=True)

MODEL = "tiny"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    # vocab_size 257 holds the byte-level tokenizer.json that random-model writes beside it.
    return write_model(tmp_path_factory.mktemp("kserve"), vocab_size=257)


@pytest.fixture(scope="module")
def client(model_dir):
    process = ServerProcess(model_dir, "--kv-cache-bytes", "8000000",
                            "--served-model-name", MODEL)
    client = triton.InferenceServerClient(f"127.0.0.1:{process.port}")
    yield client
    client.close()
    assert process.stop() == 0


def tensor(name, values, datatype):
    """An input of shape [1, n] (batch of one), as Triton's LLM clients send them."""
    array = np.array([values], dtype=object if datatype == "BYTES" else None)
    if datatype != "BYTES":
        array = array.astype({"INT32": np.int32, "UINT64": np.uint64, "FP32": np.float32,
                              "BOOL": np.bool_}[datatype])
    t = triton.InferInput(name, list(array.shape), datatype)
    t.set_data_from_numpy(array)
    return t


def sampling(**parameters):
    return tensor("sampling_parameters", [json.dumps(parameters)], "BYTES")


def text_of(result):
    return b"".join(result.as_numpy("text_output").flatten()).decode("utf-8")


def test_metadata_readiness_and_config(client):
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready(MODEL)
    assert client.get_server_metadata().name == "mlkv-serve"
    metadata = client.get_model_metadata(MODEL, as_json=True)
    inputs = {t["name"]: t["datatype"] for t in metadata["inputs"]}
    assert inputs["text_input"] == "BYTES" and inputs["input_ids"] == "INT32"
    assert {t["name"] for t in metadata["outputs"]} == {"text_output", "output_ids"}
    config = client.get_model_config(MODEL, as_json=True)["config"]
    assert config["model_transaction_policy"]["decoupled"] is True


@pytest.mark.parametrize("prompt", [[5, 6, 7], list(range(1, 40))])
def test_token_ids_equal_the_cli(client, model_dir, prompt):
    result = client.infer(MODEL, [tensor("input_ids", prompt, "INT32"),
                                  sampling(temperature=0, max_tokens=20, ignore_eos=True)],
                          outputs=[triton.InferRequestedOutput("output_ids")])
    [expected] = cli_generate(model_dir, [prompt], "--max-tokens", "20", "--ignore-eos")
    assert result.as_numpy("output_ids").tolist() == expected["token_ids"]
    response = result.get_response()
    assert response.parameters["finish_reason"].string_param == "length"
    assert response.parameters["completion_tokens"].int64_param == 20


def test_trt_llm_style_seeded_text_equals_the_cli(client, model_dir):
    prompt = "Hello, w\u00f6rld"
    result = client.infer(MODEL, [tensor("text_input", [prompt], "BYTES"),
                                  tensor("max_tokens", [12], "INT32"),
                                  tensor("temperature", [0.8], "FP32"),
                                  tensor("top_k", [40], "INT32"),
                                  tensor("top_p", [0.9], "FP32"),
                                  tensor("random_seed", [0], "UINT64"),
                                  tensor("ignore_eos", [True], "BOOL"),
                                  tensor("exclude_input_in_output", [True], "BOOL")])
    [expected] = cli_generate(model_dir, [], "--prompt", prompt, "--max-tokens", "12",
                              "--temperature", "0.8", "--top-k", "40", "--top-p", "0.9",
                              "--seed", "0", "--ignore-eos")
    assert result.as_numpy("output_ids").tolist() == expected["token_ids"]
    assert text_of(result) == expected["text"]


def test_vllm_style_stream_in_decoupled_mode(client, model_dir):
    prompt = "Once upon"
    [expected] = cli_generate(model_dir, [], "--prompt", prompt, "--max-tokens", "16",
                              "--ignore-eos")
    responses = queue.Queue()
    client.start_stream(callback=lambda result, error: responses.put((result, error)))
    try:
        for request_id in ("s1", "s2"):
            client.async_stream_infer(
                MODEL, [tensor("text_input", [prompt], "BYTES"),
                        tensor("stream", [True], "BOOL"),
                        sampling(temperature="0", max_tokens="16", ignore_eos="true")],
                request_id=request_id, enable_empty_final_response=True)
        texts, ids, finals = {"s1": "", "s2": ""}, {"s1": [], "s2": []}, set()
        while len(finals) < 2:
            result, error = responses.get(timeout=60)
            assert error is None, error
            response = result.get_response()
            if response.parameters["triton_final_response"].bool_param:
                assert not response.outputs  # the empty final response
                finals.add(response.id)
                continue
            texts[response.id] += text_of(result)
            ids[response.id] += result.as_numpy("output_ids").tolist()
    finally:
        client.stop_stream()
    for request_id in ("s1", "s2"):
        assert ids[request_id] == expected["token_ids"]
        assert texts[request_id] == expected["text"]


def test_errors(client):
    with pytest.raises(InferenceServerException) as error:
        client.infer("other-model", [tensor("input_ids", [1, 2], "INT32")])
    assert error.value.status() == "StatusCode.NOT_FOUND"
    with pytest.raises(InferenceServerException) as error:
        client.infer(MODEL, [tensor("input_ids", [1, 2], "INT32"), sampling(top_p=0)])
    assert error.value.status() == "StatusCode.INVALID_ARGUMENT"
    assert "top_p" in error.value.message()
    # On a stream a bad request gets an error and the stream goes on.
    responses = queue.Queue()
    client.start_stream(callback=lambda result, error: responses.put((result, error)))
    try:
        client.async_stream_infer(MODEL, [tensor("input_ids", [1, 2], "INT32"),
                                          tensor("bogus", [1], "INT32")], request_id="bad")
        result, error = responses.get(timeout=60)
        assert result is None and "input 'bogus': unknown" in error.message()
        client.async_stream_infer(MODEL, [tensor("input_ids", [1, 2], "INT32"),
                                          sampling(max_tokens=3)], request_id="good")
        result, error = responses.get(timeout=60)
        assert error is None and result.get_response().id == "good"
        assert len(result.as_numpy("output_ids")) <= 3
    finally:
        client.stop_stream()
