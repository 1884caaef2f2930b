"""Independent PyTorch reference of the GPT-NeoX/MLKV model contract (shared/design/model.md).

Written from the contract alone, in float64, so that the C++ engine can be checked against it.
It depends on numpy and torch only (Debian's python3-torch): safetensors files are read and
written by the small reader/writer below, not by the engine or the `safetensors` package.

Contents (safetensors I/O lives in reference_safetensors.py):
  - `Config`: config.json parsing with the GPT-NeoX/MLKV defaults and validation;
  - `compute_kv_layers` / `Config.groups`: KV-layer placement and sharing groups;
  - `ReferenceModel`: full-sequence forward (no cache) in both `kv_sharing_rope` modes, plus a
    position-by-position decoder with an explicit KV cache used to check that the two agree;
  - `convert_checkpoint`: the MHA -> GQA/MQA/MLKV conversion (`mean` and `pairwise` pooling).
"""

import json
import math
import os

import numpy as np
import torch

from reference_safetensors import (  # noqa: F401 (re-exported for the tests)
    SafetensorsError,
    round_to_bf16,
    SafetensorsFile,
    read_safetensors,
    write_safetensors,
    load_checkpoint_tensors,
    _IGNORED_SUFFIXES,
)

def load_config_dict(model_dir):
    with open(os.path.join(model_dir, "config.json")) as f:
        return json.load(f)


# --------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------


def compute_kv_layers(num_layers, num_kv_layers):
    """model.md: [0] + [int((i + 1) * (L / K)) for i in range(K - 1)]."""
    return [0] + [int((i + 1) * (num_layers / num_kv_layers)) for i in range(num_kv_layers - 1)]


_TANH_ACTS = ("gelu_new", "gelu_fast", "gelu_pytorch_tanh")


class Config:
    """A validated config.json (model.md, "Configuration")."""

    def __init__(self, d):
        if not isinstance(d, dict):
            raise ValueError("config must be a JSON object")
        if d.get("use_key_value_mlp", False):
            raise ValueError("use_key_value_mlp is not supported")

        def get(key, default=None, alt=None):
            if d.get(key) is not None:
                return d[key]
            if alt is not None and d.get(alt) is not None:
                return d[alt]
            return default

        self.raw = dict(d)
        self.hidden_size = int(d["hidden_size"])
        self.num_attention_heads = int(d["num_attention_heads"])
        self.num_hidden_layers = int(d["num_hidden_layers"])
        self.intermediate_size = int(d["intermediate_size"])
        self.vocab_size = int(d["vocab_size"])
        self.max_position_embeddings = int(get("max_position_embeddings", 2048))
        self.rotary_pct = float(get("rotary_pct", 0.25, alt="partial_rotary_factor"))
        self.rotary_emb_base = float(get("rotary_emb_base", 10000.0, alt="rope_theta"))
        self.layer_norm_eps = float(get("layer_norm_eps", 1e-5))
        self.use_parallel_residual = bool(get("use_parallel_residual", True))
        self.hidden_act = get("hidden_act", "gelu")
        if self.hidden_act != "gelu" and self.hidden_act not in _TANH_ACTS:
            raise ValueError(f"hidden_act {self.hidden_act!r} not supported")
        self.tie_word_embeddings = bool(get("tie_word_embeddings", False))
        self.bos_token_id = int(get("bos_token_id", 0))
        self.eos_token_id = int(get("eos_token_id", 2))
        self.num_key_value_heads = int(get("num_key_value_heads", self.num_attention_heads))
        self.num_key_value_layers = int(get("num_key_value_layers", self.num_hidden_layers))
        self.kv_sharing_rope = get("kv_sharing_rope", "unrotated")
        if self.kv_sharing_rope not in ("unrotated", "rotated"):
            raise ValueError(f"kv_sharing_rope {self.kv_sharing_rope!r} not supported")

        H, nH, nKV = self.hidden_size, self.num_attention_heads, self.num_key_value_heads
        L, K = self.num_hidden_layers, self.num_key_value_layers
        for name in ("hidden_size", "num_attention_heads", "num_hidden_layers",
                     "intermediate_size", "vocab_size", "num_key_value_heads",
                     "num_key_value_layers", "max_position_embeddings"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        if H % nH:
            raise ValueError("hidden_size must be divisible by num_attention_heads")
        if nH % nKV:
            raise ValueError("num_key_value_heads must divide num_attention_heads")
        if not 1 <= K <= L:
            raise ValueError("num_key_value_layers must be in [1, num_hidden_layers]")
        self.head_dim = H // nH
        self.rotary_dims = int(self.head_dim * self.rotary_pct)
        if self.rotary_dims % 2:
            raise ValueError("rotary dims must be even")
        self.query_group_size = nH // nKV
        self.kv_layers = compute_kv_layers(L, K)
        # kv_source[l]: the largest KV layer <= l.
        self.kv_source = []
        for layer in range(L):
            self.kv_source.append(max(k for k in self.kv_layers if k <= layer))
        self.groups = [
            [layer for layer in range(L) if self.kv_source[layer] == kv] for kv in self.kv_layers
        ]

    @property
    def is_standard_mha(self):
        return (self.num_key_value_heads == self.num_attention_heads
                and self.num_key_value_layers == self.num_hidden_layers)

    def kv_bytes_per_token(self, dtype_bytes):
        return 2 * self.num_key_value_layers * self.num_key_value_heads * self.head_dim * dtype_bytes

    @property
    def activation(self):
        return "tanh" if self.hidden_act in _TANH_ACTS else "erf"


# --------------------------------------------------------------------------------------------
# Weights in one layout
# --------------------------------------------------------------------------------------------


def is_ignored_tensor(name):
    return name.endswith(_IGNORED_SUFFIXES)


def split_fused_qkv(weight, bias, num_heads, head_dim):
    """Fused query_key_value [3H, H] -> q, k, v ([H, H] each), per-head rows [q | k | v]."""
    w = weight.reshape(num_heads, 3, head_dim, -1)
    b = bias.reshape(num_heads, 3, head_dim)
    out = []
    for i in range(3):
        out.append((w[:, i].reshape(num_heads * head_dim, -1), b[:, i].reshape(-1)))
    return out  # [(q_w, q_b), (k_w, k_b), (v_w, v_b)]


def fuse_qkv(q, k, v, num_heads, head_dim):
    """Inverse of split_fused_qkv: ((w, b), (w, b), (w, b)) -> (fused_w, fused_b)."""
    ws = [x[0].reshape(num_heads, 1, head_dim, -1) for x in (q, k, v)]
    bs = [x[1].reshape(num_heads, 1, head_dim) for x in (q, k, v)]
    hidden = ws[0].shape[-1]
    return (np.concatenate(ws, axis=1).reshape(3 * num_heads * head_dim, hidden),
            np.concatenate(bs, axis=1).reshape(-1))


def extract_layer_projections(cfg, tensors, layer):
    """{'q': (w, b), 'k': (w, b) or None, 'v': ...} of one layer, from either layout."""
    p = f"gpt_neox.layers.{layer}.attention."
    if p + "query_key_value.weight" in tensors:
        if not cfg.is_standard_mha:
            raise ValueError("fused query_key_value only allowed for standard MHA configs")
        q, k, v = split_fused_qkv(tensors[p + "query_key_value.weight"],
                                  tensors[p + "query_key_value.bias"],
                                  cfg.num_attention_heads, cfg.head_dim)
        return {"q": q, "k": k, "v": v}
    out = {"q": (tensors[p + "query.weight"], tensors[p + "query.bias"]), "k": None, "v": None}
    if layer in cfg.kv_layers:
        out["k"] = (tensors[p + "key.weight"], tensors[p + "key.bias"])
        out["v"] = (tensors[p + "value.weight"], tensors[p + "value.bias"])
    return out


def expected_tensor_shapes(cfg, fused):
    """{name: shape} of every tensor a checkpoint of `cfg` must hold (in one layout)."""
    H, I, V = cfg.hidden_size, cfg.intermediate_size, cfg.vocab_size
    kv = cfg.num_key_value_heads * cfg.head_dim
    shapes = {
        "gpt_neox.embed_in.weight": (V, H),
        "gpt_neox.final_layer_norm.weight": (H,),
        "gpt_neox.final_layer_norm.bias": (H,),
    }
    if not cfg.tie_word_embeddings:
        shapes["embed_out.weight"] = (V, H)
    for layer in range(cfg.num_hidden_layers):
        p = f"gpt_neox.layers.{layer}."
        for ln in ("input_layernorm", "post_attention_layernorm"):
            shapes[p + ln + ".weight"] = (H,)
            shapes[p + ln + ".bias"] = (H,)
        if fused:
            shapes[p + "attention.query_key_value.weight"] = (3 * H, H)
            shapes[p + "attention.query_key_value.bias"] = (3 * H,)
        else:
            shapes[p + "attention.query.weight"] = (H, H)
            shapes[p + "attention.query.bias"] = (H,)
            if layer in cfg.kv_layers:
                for n in ("key", "value"):
                    shapes[p + f"attention.{n}.weight"] = (kv, H)
                    shapes[p + f"attention.{n}.bias"] = (kv,)
        shapes[p + "attention.dense.weight"] = (H, H)
        shapes[p + "attention.dense.bias"] = (H,)
        shapes[p + "mlp.dense_h_to_4h.weight"] = (I, H)
        shapes[p + "mlp.dense_h_to_4h.bias"] = (I,)
        shapes[p + "mlp.dense_4h_to_h.weight"] = (H, I)
        shapes[p + "mlp.dense_4h_to_h.bias"] = (H,)
    return shapes


# --------------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------------


def _layer_norm(x, w, b, eps):
    mean = x.mean(dim=-1, keepdim=True)
    var = ((x - mean) ** 2).mean(dim=-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * w + b


def _gelu(x, kind):
    if kind == "erf":
        return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


class ReferenceModel:
    """The model of model.md in float64 (or float32), full-sequence forward without a cache."""

    def __init__(self, cfg, tensors, dtype=torch.float64):
        if isinstance(cfg, dict):
            cfg = Config(cfg)
        self.cfg = cfg
        self.dtype = dtype

        def t(name):
            return torch.tensor(np.asarray(tensors[name], dtype=np.float64), dtype=dtype)

        def tt(arr):
            return torch.tensor(np.asarray(arr, dtype=np.float64), dtype=dtype)

        self.embed_in = t("gpt_neox.embed_in.weight")
        self.embed_out = self.embed_in if cfg.tie_word_embeddings else t("embed_out.weight")
        self.final_ln = (t("gpt_neox.final_layer_norm.weight"), t("gpt_neox.final_layer_norm.bias"))
        self.layers = []
        for layer in range(cfg.num_hidden_layers):
            p = f"gpt_neox.layers.{layer}."
            proj = extract_layer_projections(cfg, tensors, layer)
            w = {
                "ln_in": (t(p + "input_layernorm.weight"), t(p + "input_layernorm.bias")),
                "ln_post": (t(p + "post_attention_layernorm.weight"),
                            t(p + "post_attention_layernorm.bias")),
                "q": (tt(proj["q"][0]), tt(proj["q"][1])),
                "dense": (t(p + "attention.dense.weight"), t(p + "attention.dense.bias")),
                "fc1": (t(p + "mlp.dense_h_to_4h.weight"), t(p + "mlp.dense_h_to_4h.bias")),
                "fc2": (t(p + "mlp.dense_4h_to_h.weight"), t(p + "mlp.dense_4h_to_h.bias")),
            }
            if layer in cfg.kv_layers:
                w["k"] = (tt(proj["k"][0]), tt(proj["k"][1]))
                w["v"] = (tt(proj["v"][0]), tt(proj["v"][1]))
            self.layers.append(w)

    @classmethod
    def from_dir(cls, model_dir, dtype=torch.float64):
        return cls(Config(load_config_dict(model_dir)), load_checkpoint_tensors(model_dir), dtype)

    # ---- pieces -----------------------------------------------------------------------------

    def _rope_tables(self, positions):
        r = self.cfg.rotary_dims
        i = torch.arange(r // 2, dtype=torch.float64)
        inv_freq = self.cfg.rotary_emb_base ** (-2.0 * i / r)
        angles = torch.tensor(positions, dtype=torch.float64)[:, None] * inv_freq[None, :]
        return torch.cos(angles).to(self.dtype), torch.sin(angles).to(self.dtype)

    def _rope(self, x, cos, sin):
        """x: [T, heads, d]; rotate dims (i, i + r/2) for i < r/2 of each head."""
        r = self.cfg.rotary_dims
        if r == 0:
            return x
        half = r // 2
        x1, x2, rest = x[..., :half], x[..., half:r], x[..., r:]
        c, s = cos[:, None, :], sin[:, None, :]
        return torch.cat([x1 * c - x2 * s, x2 * c + x1 * s, rest], dim=-1)

    def _mlp(self, w, z):
        h = _gelu(z @ w["fc1"][0].T + w["fc1"][1], self.cfg.activation)
        return h @ w["fc2"][0].T + w["fc2"][1]

    def _attend(self, q, keys, values, q_positions, k_positions):
        """q [Tq, nH, d], keys/values [Tk, nKV, d]; causal by absolute positions."""
        g = self.cfg.query_group_size
        keys = keys.repeat_interleave(g, dim=1)  # query head h -> KV head h // g
        values = values.repeat_interleave(g, dim=1)
        scores = torch.einsum("thd,shd->hts", q, keys) / math.sqrt(self.cfg.head_dim)
        qp = torch.tensor(q_positions)[:, None]
        kp = torch.tensor(k_positions)[None, :]
        scores = scores.masked_fill((kp > qp)[None], float("-inf"))
        probs = torch.softmax(scores, dim=-1)
        out = torch.einsum("hts,shd->thd", probs, values)
        return out.reshape(q.shape[0], -1)

    def _residual(self, w, x, attn_out):
        eps = self.cfg.layer_norm_eps
        if self.cfg.use_parallel_residual:
            return x + attn_out + self._mlp(w, _layer_norm(x, *w["ln_post"], eps))
        x = x + attn_out
        return x + self._mlp(w, _layer_norm(x, *w["ln_post"], eps))

    def _check_ids(self, ids):
        for t in ids:
            if not 0 <= t < self.cfg.vocab_size:
                raise ValueError(f"token id {t} outside the vocabulary")

    # ---- full-sequence forward --------------------------------------------------------------

    def forward(self, ids):
        """Logits [T, V] for every position of `ids` (a list of token ids)."""
        self._check_ids(ids)
        cfg = self.cfg
        T, nH, nKV, d = len(ids), cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim
        positions = list(range(T))
        cos, sin = self._rope_tables(positions)
        eps = cfg.layer_norm_eps
        x = self.embed_in[torch.tensor(ids, dtype=torch.long)]
        k = k_rot = v = None
        for layer, w in enumerate(self.layers):
            a = _layer_norm(x, *w["ln_in"], eps)
            q = (a @ w["q"][0].T + w["q"][1]).reshape(T, nH, d)
            is_kv = layer in cfg.kv_layers
            if is_kv:  # this layer computes its group's K/V
                k = (a @ w["k"][0].T + w["k"][1]).reshape(T, nKV, d)
                v = (a @ w["v"][0].T + w["v"][1]).reshape(T, nKV, d)
                k_rot = self._rope(k, cos, sin)
            q = self._rope(q, cos, sin)
            keys = k_rot if (is_kv or cfg.kv_sharing_rope == "rotated") else k
            o = self._attend(q, keys, v, positions, positions)
            o = o @ w["dense"][0].T + w["dense"][1]
            x = self._residual(w, x, o)
        h = _layer_norm(x, *self.final_ln, eps)
        return h @ self.embed_out.T

    def logprobs(self, ids):
        """log p(ids[i] | ids[:i]) for i = 1..n-1, as a float64 numpy array."""
        logits = self.forward(ids).double()
        lp = torch.log_softmax(logits[:-1], dim=-1)
        return lp[torch.arange(len(ids) - 1), torch.tensor(ids[1:])].numpy()

    def next_token_logprobs(self, ids):
        """log-softmax over the vocabulary after every prefix: [T, V] numpy array."""
        return torch.log_softmax(self.forward(ids).double(), dim=-1).numpy()

    def greedy(self, prompt, max_tokens, stop_at_eos=False):
        """Greedy continuation, recomputing the whole sequence every step (no cache).

        Returns (token_ids, logprobs, gaps): gaps[i] = top-1 minus top-2 log-probability at step i,
        which tells whether a float32 engine could legitimately pick the other token.
        """
        seq, out, lps, gaps = list(prompt), [], [], []
        for _ in range(max_tokens):
            lp = torch.log_softmax(self.forward(seq)[-1].double(), dim=-1)
            top = torch.topk(lp, 2)
            token = int(top.indices[0])
            out.append(token)
            lps.append(float(top.values[0]))
            gaps.append(float(top.values[0] - top.values[1]))
            seq.append(token)
            if stop_at_eos and token == self.cfg.eos_token_id:
                break
        return out, lps, gaps

    # ---- position-by-position decoding with an explicit cache -------------------------------

    def decode_incremental(self, ids, chunk=1):
        """Logits [T, V] computed `chunk` tokens at a time with a per-group KV cache.

        The cache keeps the *unrotated* K of each group (and V); the rotated form is derived at
        read time, as model.md asks. Used to check that cached decoding equals the full forward.
        """
        self._check_ids(ids)
        cfg = self.cfg
        nH, nKV, d = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim
        eps = cfg.layer_norm_eps
        cache_k = {g: [] for g in cfg.kv_layers}
        cache_v = {g: [] for g in cfg.kv_layers}
        all_logits = []
        for start in range(0, len(ids), chunk):
            chunk_ids = ids[start : start + chunk]
            T = len(chunk_ids)
            positions = list(range(start, start + T))
            cos, sin = self._rope_tables(positions)
            x = self.embed_in[torch.tensor(chunk_ids, dtype=torch.long)]
            for layer, w in enumerate(self.layers):
                src = cfg.kv_source[layer]
                a = _layer_norm(x, *w["ln_in"], eps)
                q = self._rope((a @ w["q"][0].T + w["q"][1]).reshape(T, nH, d), cos, sin)
                if layer == src:
                    cache_k[src].append((a @ w["k"][0].T + w["k"][1]).reshape(T, nKV, d))
                    cache_v[src].append((a @ w["v"][0].T + w["v"][1]).reshape(T, nKV, d))
                k_all = torch.cat(cache_k[src])
                v_all = torch.cat(cache_v[src])
                k_positions = list(range(start + T))
                if layer == src or cfg.kv_sharing_rope == "rotated":
                    kc, ks = self._rope_tables(k_positions)
                    k_all = self._rope(k_all, kc, ks)
                o = self._attend(q, k_all, v_all, positions, k_positions)
                x = self._residual(w, x, o @ w["dense"][0].T + w["dense"][1])
            all_logits.append(_layer_norm(x, *self.final_ln, eps) @ self.embed_out.T)
        return torch.cat(all_logits)


# --------------------------------------------------------------------------------------------
# Conversion MHA -> GQA/MQA/MLKV
# --------------------------------------------------------------------------------------------


def convert_checkpoint(cfg_dict, tensors, num_kv_heads, num_kv_layers, pool="mean"):
    """Reference conversion of a standard MHA checkpoint (model.md, "Converting ...").

    Returns (new_config_dict, {name: float64 array}) in the split layout. Within each layer the
    K/V heads are averaged over consecutive query-head groups; then each non-KV layer's K/V is
    folded into its group's KV layer: `mean` is the plain mean over the group's layers, `pairwise`
    iterates the group's layers in order with w = (w + w_next) / 2.
    """
    cfg = Config(cfg_dict)
    if not cfg.is_standard_mha:
        raise ValueError("conversion needs a standard MHA checkpoint")
    if pool not in ("mean", "pairwise"):
        raise ValueError(f"unknown pool {pool!r}")
    new_dict = dict(cfg_dict)
    new_dict["num_key_value_heads"] = num_kv_heads
    new_dict["num_key_value_layers"] = num_kv_layers
    new_cfg = Config(new_dict)
    nH, d = cfg.num_attention_heads, cfg.head_dim
    g = nH // num_kv_heads

    def pool_heads(w, b):
        w = np.asarray(w, dtype=np.float64).reshape(num_kv_heads, g, d, -1).mean(axis=1)
        b = np.asarray(b, dtype=np.float64).reshape(num_kv_heads, g, d).mean(axis=1)
        return w.reshape(num_kv_heads * d, -1), b.reshape(-1)

    out = {}
    for name, arr in tensors.items():
        if is_ignored_tensor(name) or ".attention.query_key_value." in name:
            continue
        if any(f".attention.{n}." in name for n in ("query", "key", "value")):
            continue
        out[name] = np.asarray(arr, dtype=np.float64)
    pooled = []  # per layer: {'k': (w, b), 'v': (w, b)}
    for layer in range(cfg.num_hidden_layers):
        proj = extract_layer_projections(cfg, tensors, layer)
        p = f"gpt_neox.layers.{layer}.attention."
        out[p + "query.weight"] = np.asarray(proj["q"][0], dtype=np.float64)
        out[p + "query.bias"] = np.asarray(proj["q"][1], dtype=np.float64)
        pooled.append({n: pool_heads(*proj[n]) for n in ("k", "v")})
    for group in new_cfg.groups:
        kv_layer = group[0]
        p = f"gpt_neox.layers.{kv_layer}.attention."
        for n, full in (("k", "key"), ("v", "value")):
            if pool == "mean":
                w = np.mean([pooled[layer][n][0] for layer in group], axis=0)
                b = np.mean([pooled[layer][n][1] for layer in group], axis=0)
            else:
                w, b = pooled[group[0]][n]
                for layer in group[1:]:
                    w = (w + pooled[layer][n][0]) / 2
                    b = (b + pooled[layer][n][1]) / 2
            out[p + full + ".weight"] = w
            out[p + full + ".bias"] = b
    return new_dict, out


# --------------------------------------------------------------------------------------------
# Random checkpoints (for self-tests of the reference that need no engine)
# --------------------------------------------------------------------------------------------


def random_tensors(cfg, seed, fused=None, std=0.02):
    """Seeded random weights for `cfg`; fused layout by default for standard MHA configs."""
    if fused is None:
        fused = cfg.is_standard_mha
    rng = np.random.default_rng(seed)
    out = {}
    for name, shape in expected_tensor_shapes(cfg, fused).items():
        if "layernorm" in name or "layer_norm" in name:
            base = 1.0 if name.endswith(".weight") else 0.0
            out[name] = (base + 0.1 * rng.standard_normal(shape)).astype(np.float32)
        elif name.endswith("embed_in.weight") or name.endswith("embed_out.weight"):
            out[name] = (0.3 * rng.standard_normal(shape)).astype(np.float32)
        else:
            scale = std * (3.0 if "attention.query" in name or "attention.key" in name else 1.0)
            out[name] = (scale * rng.standard_normal(shape)).astype(np.float32)
    return out


def write_model_dir(model_dir, cfg_dict, tensors, dtype="F32"):
    os.makedirs(model_dir, exist_ok=True)
    with open(os.path.join(model_dir, "config.json"), "w") as f:
        json.dump(cfg_dict, f, indent=2)
    write_safetensors(os.path.join(model_dir, "model.safetensors"), tensors, dtype=dtype)
