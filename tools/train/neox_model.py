"""The GPT-NeoX/MLKV model of shared/design/model.md as a trainable PyTorch module.

It computes exactly what the C++ engine computes (the engine's tests hold it to that through the
shipped models), in float32, over a batch of equal-length windows: parallel or serial residual,
partial NeoX rotary, query heads grouped over `num_key_value_heads` K/V heads, and layers grouped
over `num_key_value_layers` K/V layers, the non-KV layers of a group attending to the KV layer's
keys unrotated or rotated as `kv_sharing_rope` says. Weights are named as in Hugging Face's
GPT-NeoX in the split (MLKV) layout; hf_checkpoint.py maps them to and from files.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

_TANH_ACTS = ("gelu_new", "gelu_fast", "gelu_pytorch_tanh")


class ConfigError(ValueError):
    """A config.json this trainer cannot train (the message names the key)."""


def kv_layers_of(num_layers, num_kv_layers):
    """model.md: the KV layers are [0] + [int((i + 1) * (L / K)) for i in range(K - 1)]."""
    return [0] + [int((i + 1) * (num_layers / num_kv_layers)) for i in range(num_kv_layers - 1)]


class NeoxConfig:
    """The fields of a config.json the forward pass needs, validated as model.md says."""

    def __init__(self, raw):
        if not isinstance(raw, dict):
            raise ConfigError("config.json must hold a JSON object")
        if raw.get("use_key_value_mlp", False):
            raise ConfigError("use_key_value_mlp: true is not supported (model.md)")

        def number(key, default=None, alt=None, kind=int):
            value = raw.get(key)
            if value is None and alt is not None:
                value = raw.get(alt)
            if value is None:
                if default is None:
                    raise ConfigError(f"{key}: missing")
                value = default
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"{key}: must be a number, got {value!r}")
            if kind is int and value != int(value):
                raise ConfigError(f"{key}: must be an integer, got {value!r}")
            return kind(value)

        self.raw = dict(raw)
        self.hidden_size = number("hidden_size")
        self.num_attention_heads = number("num_attention_heads")
        self.num_hidden_layers = number("num_hidden_layers")
        self.intermediate_size = number("intermediate_size")
        self.vocab_size = number("vocab_size")
        self.max_position_embeddings = number("max_position_embeddings", 2048)
        self.rotary_pct = number("rotary_pct", 0.25, alt="partial_rotary_factor", kind=float)
        self.rotary_emb_base = number("rotary_emb_base", 10000.0, alt="rope_theta", kind=float)
        self.layer_norm_eps = number("layer_norm_eps", 1e-5, kind=float)
        self.num_key_value_heads = number("num_key_value_heads", self.num_attention_heads)
        self.num_key_value_layers = number("num_key_value_layers", self.num_hidden_layers)
        self.eos_token_id = number("eos_token_id", 0)
        self.use_parallel_residual = bool(raw.get("use_parallel_residual", True))
        self.tie_word_embeddings = bool(raw.get("tie_word_embeddings", False))
        self.hidden_act = raw.get("hidden_act", "gelu")
        if self.hidden_act != "gelu" and self.hidden_act not in _TANH_ACTS:
            raise ConfigError(f"hidden_act: {self.hidden_act!r} is not supported")
        self.kv_sharing_rope = raw.get("kv_sharing_rope", "unrotated")
        if self.kv_sharing_rope not in ("unrotated", "rotated"):
            raise ConfigError(f"kv_sharing_rope: {self.kv_sharing_rope!r} is not supported")
        for key in ("hidden_size", "num_attention_heads", "num_hidden_layers", "intermediate_size",
                    "vocab_size", "max_position_embeddings", "num_key_value_heads",
                    "num_key_value_layers"):
            if getattr(self, key) <= 0:
                raise ConfigError(f"{key}: must be positive, got {getattr(self, key)}")
        if self.hidden_size % self.num_attention_heads:
            raise ConfigError("hidden_size: must be a multiple of num_attention_heads")
        if self.num_attention_heads % self.num_key_value_heads:
            raise ConfigError("num_key_value_heads: must divide num_attention_heads")
        if self.num_key_value_layers > self.num_hidden_layers:
            raise ConfigError("num_key_value_layers: must be at most num_hidden_layers")
        if not 0 <= self.eos_token_id < self.vocab_size:
            raise ConfigError("eos_token_id: must be a token id below vocab_size")
        self.head_dim = self.hidden_size // self.num_attention_heads
        self.rotary_dims = int(self.head_dim * self.rotary_pct)
        if self.rotary_dims % 2:
            raise ConfigError("rotary_pct: gives an odd number of rotary dims per head")
        self.kv_layers = kv_layers_of(self.num_hidden_layers, self.num_key_value_layers)

    @property
    def is_standard_mha(self):
        return (self.num_key_value_heads == self.num_attention_heads
                and self.num_key_value_layers == self.num_hidden_layers)

    def kv_bytes_per_token(self, dtype_bytes):
        """model.md: 2 (K and V) x K x nKV x d x bytes."""
        return (2 * self.num_key_value_layers * self.num_key_value_heads * self.head_dim
                * dtype_bytes)


def rotate(x, cos, sin, rotary_dims):
    """NeoX rotate-half on the first `rotary_dims` dims of the last axis (model.md's RoPE)."""
    half = rotary_dims // 2
    x1, x2, rest = x[..., :half], x[..., half:rotary_dims], x[..., rotary_dims:]
    return torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin, rest), dim=-1)


class NeoxLayer(nn.Module):
    def __init__(self, cfg, has_kv):
        super().__init__()
        H, d = cfg.hidden_size, cfg.head_dim
        self.input_layernorm = nn.LayerNorm(H, eps=cfg.layer_norm_eps)
        self.post_attention_layernorm = nn.LayerNorm(H, eps=cfg.layer_norm_eps)
        self.query = nn.Linear(H, cfg.num_attention_heads * d)
        self.key = nn.Linear(H, cfg.num_key_value_heads * d) if has_kv else None
        self.value = nn.Linear(H, cfg.num_key_value_heads * d) if has_kv else None
        self.dense = nn.Linear(cfg.num_attention_heads * d, H)
        self.dense_h_to_4h = nn.Linear(H, cfg.intermediate_size)
        self.dense_4h_to_h = nn.Linear(cfg.intermediate_size, H)


class NeoxModel(nn.Module):
    """Token ids [B, T] -> logits [B, T, V], every window starting at position 0."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.embed_in = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.layers = nn.ModuleList(
            NeoxLayer(cfg, layer in cfg.kv_layers) for layer in range(cfg.num_hidden_layers))
        self.final_layer_norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.embed_out = (None if cfg.tie_word_embeddings
                          else nn.Linear(cfg.hidden_size, cfg.vocab_size, bias=False))
        r = cfg.rotary_dims
        self.register_buffer(
            "inv_freq", cfg.rotary_emb_base ** (-torch.arange(0, r, 2, dtype=torch.float64) / r),
            persistent=False)

    def init_weights(self, generator):
        """GPT-NeoX's initialisation: N(0, 0.02), the two projections that write the residual
        stream scaled by 1/sqrt(2L) so its variance does not grow with depth; zero biases."""
        std = 0.02
        out_std = std / math.sqrt(2 * self.cfg.num_hidden_layers)
        for name, p in self.named_parameters():
            if name.endswith("bias"):
                nn.init.zeros_(p)
            elif "layernorm" in name or "layer_norm" in name:
                nn.init.ones_(p)
            else:
                scale = out_std if name.endswith(("dense.weight", "dense_4h_to_h.weight")) else std
                with torch.no_grad():
                    p.copy_(torch.randn(p.shape, generator=generator) * scale)

    def _rotary(self, T):
        angles = torch.arange(T, dtype=torch.float64)[:, None] * self.inv_freq[None, :]
        return angles.cos().float(), angles.sin().float()  # [T, r/2]

    def _mlp(self, layer, z):
        h = layer.dense_h_to_4h(z)
        approximate = "tanh" if self.cfg.hidden_act in _TANH_ACTS else "none"
        return layer.dense_4h_to_h(F.gelu(h, approximate=approximate))

    def forward(self, ids):
        cfg = self.cfg
        B, T = ids.shape
        nH, nKV, d, r = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim, cfg.rotary_dims
        cos, sin = self._rotary(T)
        cos, sin = cos[None, None], sin[None, None]  # [1, 1, T, r/2] against [B, heads, T, d]
        causal = torch.ones(T, T, dtype=torch.bool).triu(1)
        x = self.embed_in(ids)
        keys = values = None
        for layer in self.layers:
            a = layer.input_layernorm(x)
            q = rotate(layer.query(a).view(B, T, nH, d).transpose(1, 2), cos, sin, r)
            if layer.key is not None:
                k = layer.key(a).view(B, T, nKV, d).transpose(1, 2)
                k_rot = rotate(k, cos, sin, r)
                values = layer.value(a).view(B, T, nKV, d).transpose(1, 2)
                keys, shared_keys = k_rot, (k if cfg.kv_sharing_rope == "unrotated" else k_rot)
            else:
                keys = shared_keys
            group = nH // nKV
            k_heads = keys.repeat_interleave(group, dim=1) if group > 1 else keys
            v_heads = values.repeat_interleave(group, dim=1) if group > 1 else values
            scores = (q @ k_heads.transpose(-1, -2)) / math.sqrt(d)
            attn = scores.masked_fill(causal, float("-inf")).softmax(dim=-1)
            o = layer.dense((attn @ v_heads).transpose(1, 2).reshape(B, T, nH * d))
            if cfg.use_parallel_residual:
                x = x + o + self._mlp(layer, layer.post_attention_layernorm(x))
            else:
                x = x + o
                x = x + self._mlp(layer, layer.post_attention_layernorm(x))
        h = self.final_layer_norm(x)
        if self.embed_out is None:
            return h @ self.embed_in.weight.t()
        return self.embed_out(h)
