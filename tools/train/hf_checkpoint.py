"""Hugging Face-layout model directories for the trainer: config.json, model.safetensors (one
file, F32/F16/BF16, the fused query_key_value layout for standard MHA as in Pythia, the split
layout otherwise, as model.md gives both) and the byte-level tokenizer.json that `mlkv
random-model` writes, so that `mlkv`, `mlkv-server` and `mlkv convert` read what this writes and
the trainer reads what `mlkv convert` writes.
"""

import json
import os
import struct

import torch

from neox_model import NeoxConfig, NeoxModel

_DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}
DTYPE_NAMES = {"float32": "F32", "float16": "F16", "bfloat16": "BF16"}
_IGNORED_SUFFIXES = ("attention.bias", "attention.masked_bias", "rotary_emb.inv_freq")


class CheckpointError(ValueError):
    """A model directory this trainer cannot read (the message names the file and the fault)."""


# ---- safetensors ---------------------------------------------------------------------------


def read_safetensors(path):
    """{name: float32 tensor} of one safetensors file."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise CheckpointError(f"{path}: {e.strerror}") from e
    if len(data) < 8:
        raise CheckpointError(f"{path}: too short for a safetensors header")
    (header_len,) = struct.unpack("<Q", data[:8])
    if 8 + header_len > len(data):
        raise CheckpointError(f"{path}: header length {header_len} runs past the file")
    try:
        header = json.loads(data[8:8 + header_len])
    except ValueError as e:
        raise CheckpointError(f"{path}: header is not JSON ({e})") from e
    body = memoryview(data)[8 + header_len:]
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype = _DTYPES.get(info.get("dtype"))
        if dtype is None:
            raise CheckpointError(f"{path}: {name}: dtype {info.get('dtype')!r} is not F32/F16/BF16")
        begin, end = info["data_offsets"]
        count = 1
        for n in info["shape"]:
            count *= n
        if end - begin != count * torch.finfo(dtype).bits // 8 or end > len(body):
            raise CheckpointError(f"{path}: {name}: data_offsets disagree with its shape")
        t = torch.frombuffer(bytearray(body[begin:end]), dtype=dtype) if count else torch.empty(0)
        tensors[name] = t.reshape(info["shape"]).float()
    return tensors


def write_safetensors(path, tensors, dtype_name):
    """Writes {name: tensor} rounded to `dtype_name` (F32/F16/BF16), names sorted."""
    dtype = _DTYPES[dtype_name]
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().to(dtype).contiguous()
        blob = t.view(torch.uint8).numpy().tobytes() if t.numel() else b""
        header[name] = {"dtype": dtype_name, "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)  # the data starts 8-byte aligned
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(encoded)))
        f.write(encoded)
        for blob in blobs:
            f.write(blob)


# ---- names ---------------------------------------------------------------------------------

_LAYER_NAMES = {  # module name within a layer -> Hugging Face name within gpt_neox.layers.{l}.
    "input_layernorm": "input_layernorm", "post_attention_layernorm": "post_attention_layernorm",
    "query": "attention.query", "key": "attention.key", "value": "attention.value",
    "dense": "attention.dense", "dense_h_to_4h": "mlp.dense_h_to_4h",
    "dense_4h_to_h": "mlp.dense_4h_to_h",
}


def hf_name(module_name):
    """`layers.3.query.weight` -> `gpt_neox.layers.3.attention.query.weight`, and so on."""
    if module_name.startswith("layers."):
        _, layer, part, leaf = module_name.split(".")
        return f"gpt_neox.layers.{layer}.{_LAYER_NAMES[part]}.{leaf}"
    if module_name.startswith("embed_out."):
        return module_name
    return "gpt_neox." + module_name


def _fuse_qkv(q, k, v, num_heads, head_dim):
    """Per-head rows [q | k | v] (model.md's fused layout) from three [nH*d, ...] tensors."""
    parts = [t.reshape(num_heads, 1, head_dim, *t.shape[1:]) for t in (q, k, v)]
    return torch.cat(parts, dim=1).reshape(3 * num_heads * head_dim, *q.shape[1:])


def _split_qkv(fused, num_heads, head_dim):
    per_head = fused.reshape(num_heads, 3, head_dim, *fused.shape[1:])
    return [per_head[:, i].reshape(num_heads * head_dim, *fused.shape[1:]) for i in range(3)]


def hf_tensors(model):
    """The model's weights under their Hugging Face names, fused for standard MHA."""
    cfg = model.cfg
    tensors = {hf_name(n): p.detach() for n, p in model.state_dict().items()}
    if cfg.is_standard_mha:
        for layer in range(cfg.num_hidden_layers):
            p = f"gpt_neox.layers.{layer}.attention."
            for leaf in ("weight", "bias"):
                q, k, v = (tensors.pop(f"{p}{n}.{leaf}") for n in ("query", "key", "value"))
                tensors[f"{p}query_key_value.{leaf}"] = _fuse_qkv(
                    q, k, v, cfg.num_attention_heads, cfg.head_dim)
    return tensors


def load_hf_tensors(model, tensors, path):
    """Copies Hugging Face-named tensors (either layout) into `model`; every weight the model
    has must be there with its shape, and nothing else may be."""
    cfg = model.cfg
    tensors = {n: t for n, t in tensors.items() if not n.endswith(_IGNORED_SUFFIXES)}
    for layer in range(cfg.num_hidden_layers):
        p = f"gpt_neox.layers.{layer}.attention."
        for leaf in ("weight", "bias"):
            fused = tensors.pop(f"{p}query_key_value.{leaf}", None)
            if fused is None:
                continue
            if not cfg.is_standard_mha:
                raise CheckpointError(f"{path}: fused query_key_value in a config that is not "
                                      "standard MHA")
            for n, t in zip(("query", "key", "value"),
                            _split_qkv(fused, cfg.num_attention_heads, cfg.head_dim)):
                tensors[f"{p}{n}.{leaf}"] = t
    state = {}
    for module_name, param in model.state_dict().items():
        name = hf_name(module_name)
        t = tensors.pop(name, None)
        if t is None:
            raise CheckpointError(f"{path}: missing tensor {name}")
        if tuple(t.shape) != tuple(param.shape):
            raise CheckpointError(f"{path}: {name} has shape {list(t.shape)}, the config "
                                  f"needs {list(param.shape)}")
        state[module_name] = t
    if tensors:
        raise CheckpointError(f"{path}: tensors the config has no place for: "
                              f"{', '.join(sorted(tensors)[:5])}")
    model.load_state_dict(state)


# ---- the tokenizer -------------------------------------------------------------------------


def _bytes_to_unicode():
    """GPT-2's byte -> printable character map of byte-level BPE vocabularies."""
    printable = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
                 + list(range(ord("®"), ord("ÿ") + 1)))
    chars, extra = {}, 0
    for b in range(256):
        if b in printable:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + extra)
            extra += 1
    return chars


def byte_tokenizer_json(eos_token_id):
    """The tokenizer.json `mlkv random-model` writes: "<|endoftext|>" at eos_token_id, the 256
    bytes at the other ids from 0 up, no merges (one token per byte)."""
    byte_chars = _bytes_to_unicode()
    vocab = {"<|endoftext|>": eos_token_id}
    token_id = 0
    for b in range(256):
        if token_id == eos_token_id:
            token_id += 1
        vocab[byte_chars[b]] = token_id
        token_id += 1
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
                  "use_regex": True}
    return {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [{"id": eos_token_id, "content": "<|endoftext|>", "single_word": False,
                          "lstrip": False, "rstrip": False, "normalized": False,
                          "special": True}],
        "normalizer": {"type": "NFC"}, "pre_tokenizer": byte_level,
        "post_processor": byte_level, "decoder": byte_level,
        "model": {"type": "BPE", "dropout": None, "unk_token": None,
                  "continuing_subword_prefix": None, "end_of_word_suffix": None,
                  "fuse_unk": False, "vocab": vocab, "merges": []},
    }


def byte_token_ids(eos_token_id):
    """A [256] tensor: the token id of each byte under byte_tokenizer_json."""
    return torch.tensor([b + (b >= eos_token_id) for b in range(256)], dtype=torch.long)


# ---- directories ---------------------------------------------------------------------------


def read_config(model_dir):
    path = os.path.join(model_dir, "config.json")
    try:
        with open(path) as f:
            raw = json.load(f)
    except OSError as e:
        raise CheckpointError(f"{path}: {e.strerror}") from e
    except ValueError as e:
        raise CheckpointError(f"{path}: not JSON ({e})") from e
    return NeoxConfig(raw)


def load_model(model_dir):
    """A NeoxModel with the weights of `model_dir` (config.json + model.safetensors)."""
    cfg = read_config(model_dir)
    model = NeoxModel(cfg)
    path = os.path.join(model_dir, "model.safetensors")
    load_hf_tensors(model, read_safetensors(path), path)
    return model


def write_model(model, out_dir, dtype_name):
    """config.json, model.safetensors and tokenizer.json of `model` into `out_dir` (made if
    missing), the weights rounded to `dtype_name`."""
    os.makedirs(out_dir, exist_ok=True)
    raw = dict(model.cfg.raw)
    raw["torch_dtype"] = {v: k for k, v in DTYPE_NAMES.items()}[dtype_name]
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(raw, f, indent=2)
        f.write("\n")
    write_safetensors(os.path.join(out_dir, "model.safetensors"), hf_tensors(model), dtype_name)
    with open(os.path.join(out_dir, "tokenizer.json"), "w") as f:
        json.dump(byte_tokenizer_json(model.cfg.eos_token_id), f, indent=2)
        f.write("\n")
