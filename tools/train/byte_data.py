"""The training text as byte-level token ids: the split, the training batches and the
validation windows.

The split is on bytes: the first 90% of the file trains, the last 10% validates.
Validation scores the held-out ids exactly as `mlkv score` does with a given max_model_len:
windows of W = max_model_len - 1 ids that overlap by one, so every id but the first is scored
once, given the ids before it in its window. The trainer's figure and the engine's are then the
same quantity, and they can be compared to the last digit the arithmetic allows.
"""

import math
import os

import torch

from hf_checkpoint import byte_token_ids

TRAIN_FRACTION = 0.9


class DataError(ValueError):
    """Training text that cannot be used (the message names the file and the fault)."""


def split_point(num_bytes):
    """The first validation byte: floor(0.9 x the file's size)."""
    return int(num_bytes * TRAIN_FRACTION)


def read_split(path):
    """(train bytes, validation bytes) of the file at `path`."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise DataError(f"{path}: {e.strerror or e}") from e
    if os.path.getsize(path) == 0:
        raise DataError(f"{path}: is empty")
    cut = split_point(len(data))
    return data[:cut], data[cut:]


def to_ids(data, eos_token_id):
    return byte_token_ids(eos_token_id)[torch.frombuffer(bytearray(data), dtype=torch.uint8).long()]


def training_batch(ids, batch_size, context, seed, step):
    """(inputs, targets), each [batch_size, context], of random windows of `ids`. A pure
    function of (seed, step), so a resumed run sees exactly the batches of an unbroken one."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + step)
    starts = torch.randint(0, len(ids) - context, (batch_size,), generator=generator)
    windows = ids[starts[:, None] + torch.arange(context + 1)[None, :]]
    return windows[:, :-1], windows[:, 1:]


def validation_windows(ids, max_model_len):
    """`mlkv score`'s windows over `ids`: W = max_model_len - 1 ids each, overlapping by one."""
    width = max_model_len - 1
    windows = []
    start = 0
    while start + 1 < len(ids):
        windows.append(ids[start:start + width])
        start += width - 1
    return windows


@torch.no_grad()
def validation_loss(model, ids, max_model_len, batch_size=16):
    """Mean negative log-likelihood in nats per scored id (= per byte) over the windows."""
    windows = validation_windows(ids, max_model_len)
    total, count = 0.0, 0
    full = [w for w in windows if len(w) == len(windows[0])]
    ragged = [w for w in windows if len(w) != len(windows[0])]
    batches = [torch.stack(full[i:i + batch_size]) for i in range(0, len(full), batch_size)]
    batches += [w[None] for w in ragged]
    was_training = model.training
    model.eval()
    for batch in batches:
        logits = model(batch[:, :-1])
        nll = torch.nn.functional.cross_entropy(
            logits.double().reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1),
            reduction="sum")
        total += nll.item()
        count += batch[:, 1:].numel()
    model.train(was_training)
    return total / count


def bits(nats):
    return nats / math.log(2)
