"""A small safetensors reader/writer in numpy for the reference model and the conformance tests.

Independent of the engine and of the `safetensors` package: F32, F16, BF16 (and F64 for
convenience), with the header, offsets and sizes validated; sharded checkpoints through
`model.safetensors.index.json`.
"""

import json
import os
import struct

import numpy as np

# --------------------------------------------------------------------------------------------
# safetensors
# --------------------------------------------------------------------------------------------

_ITEM_SIZE = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2}

# Tensors the model never reads (HF buffers); present in some checkpoints.
_IGNORED_SUFFIXES = (
    "attention.bias",
    "attention.masked_bias",
    "attention.rotary_emb.inv_freq",
)


class SafetensorsError(ValueError):
    pass


def _bf16_bits_to_f32(bits):
    return (bits.astype(np.uint32) << np.uint32(16)).view(np.float32)


def _f32_to_bf16_bits(values):
    """Round float32 to bfloat16 (nearest, ties to even); returns the uint16 bit patterns."""
    u = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounding = ((u >> np.uint64(16)) & np.uint64(1)) + np.uint64(0x7FFF)
    return ((u + rounding) >> np.uint64(16)).astype(np.uint16)


def round_to_bf16(values):
    """float32 values rounded to the nearest bfloat16, as float32."""
    return _bf16_bits_to_f32(_f32_to_bf16_bits(values))


class SafetensorsFile:
    """A safetensors file, validated on open: `header` maps names to {dtype, shape, data_offsets}."""

    def __init__(self, path):
        self.path = path
        with open(path, "rb") as f:
            data = f.read()
        if len(data) < 8:
            raise SafetensorsError(f"{path}: shorter than the 8-byte header length")
        (header_len,) = struct.unpack("<Q", data[:8])
        if header_len > len(data) - 8:
            raise SafetensorsError(f"{path}: header length {header_len} exceeds the file")
        try:
            header = json.loads(data[8 : 8 + header_len].decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise SafetensorsError(f"{path}: header is not valid JSON: {e}") from e
        if not isinstance(header, dict):
            raise SafetensorsError(f"{path}: header is not a JSON object")
        self.metadata = header.pop("__metadata__", None)
        self.header = header
        self._data = memoryview(data)[8 + header_len :]
        spans = []
        for name, info in header.items():
            dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
            if dtype not in _ITEM_SIZE:
                raise SafetensorsError(f"{path}: tensor {name}: unsupported dtype {dtype!r}")
            if not isinstance(shape, list) or any(
                not isinstance(s, int) or s < 0 for s in shape
            ):
                raise SafetensorsError(f"{path}: tensor {name}: bad shape {shape!r}")
            if (
                not isinstance(offsets, list)
                or len(offsets) != 2
                or not all(isinstance(o, int) for o in offsets)
            ):
                raise SafetensorsError(f"{path}: tensor {name}: bad data_offsets {offsets!r}")
            begin, end = offsets
            nbytes = int(np.prod(shape, dtype=np.int64)) * _ITEM_SIZE[dtype]
            if not (0 <= begin <= end <= len(self._data)) or end - begin != nbytes:
                raise SafetensorsError(
                    f"{path}: tensor {name}: data_offsets {offsets} do not fit shape {shape} "
                    f"{dtype} in {len(self._data)} data bytes"
                )
            spans.append((begin, end, name))
        spans.sort()
        for (b0, e0, n0), (b1, e1, n1) in zip(spans, spans[1:]):
            if b1 < e0:
                raise SafetensorsError(f"{path}: tensors {n0} and {n1} overlap")

    def names(self):
        return list(self.header)

    def dtype(self, name):
        return self.header[name]["dtype"]

    def shape(self, name):
        return tuple(self.header[name]["shape"])

    def tensor(self, name):
        """The tensor as a float32 (or float64 for F64) numpy array; F16/BF16 converted exactly."""
        info = self.header[name]
        begin, end = info["data_offsets"]
        raw = self._data[begin:end]
        dtype, shape = info["dtype"], info["shape"]
        if dtype == "F64":
            arr = np.frombuffer(raw, dtype="<f8")
        elif dtype == "F32":
            arr = np.frombuffer(raw, dtype="<f4")
        elif dtype == "F16":
            arr = np.frombuffer(raw, dtype="<f2").astype(np.float32)
        else:  # BF16
            arr = _bf16_bits_to_f32(np.frombuffer(raw, dtype="<u2"))
        return arr.reshape(shape).copy()


def read_safetensors(path):
    """All tensors of one file: {name: float32 numpy array}."""
    f = SafetensorsFile(path)
    return {name: f.tensor(name) for name in f.names()}


def write_safetensors(path, tensors, dtype="F32", metadata=None):
    """Writes {name: array} in safetensors format, every tensor converted to `dtype`."""
    if metadata is None:
        metadata = {"format": "pt"}  # transformers' from_pretrained refuses files without it
    header = {}
    if metadata is not None:
        header["__metadata__"] = metadata
    blobs, offset = [], 0
    for name in sorted(tensors):
        arr = np.asarray(tensors[name])
        if dtype == "F32":
            blob = np.ascontiguousarray(arr, dtype="<f4").tobytes()
        elif dtype == "F64":
            blob = np.ascontiguousarray(arr, dtype="<f8").tobytes()
        elif dtype == "F16":
            blob = np.ascontiguousarray(arr, dtype="<f2").tobytes()
        elif dtype == "BF16":
            blob = _f32_to_bf16_bits(arr.astype(np.float32)).astype("<u2").tobytes()
        else:
            raise ValueError(f"unsupported dtype {dtype}")
        header[name] = {
            "dtype": dtype,
            "shape": list(arr.shape),
            "data_offsets": [offset, offset + len(blob)],
        }
        blobs.append(blob)
        offset += len(blob)
    header_bytes = json.dumps(header, separators=(",", ":")).encode("utf-8")
    header_bytes += b" " * (-len(header_bytes) % 8)  # pad as the reference writer does
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(header_bytes)))
        f.write(header_bytes)
        for blob in blobs:
            f.write(blob)


def load_checkpoint_tensors(model_dir):
    """{name: float32 array} of a model folder: model.safetensors or the index's shards."""
    index_path = os.path.join(model_dir, "model.safetensors.index.json")
    if os.path.exists(index_path):
        with open(index_path) as f:
            weight_map = json.load(f)["weight_map"]
        tensors, files = {}, {}
        for name, shard in weight_map.items():
            if shard not in files:
                files[shard] = SafetensorsFile(os.path.join(model_dir, shard))
            if name not in files[shard].header:
                raise SafetensorsError(f"{shard}: tensor {name} listed in the index is missing")
            tensors[name] = files[shard].tensor(name)
        return tensors
    return read_safetensors(os.path.join(model_dir, "model.safetensors"))
