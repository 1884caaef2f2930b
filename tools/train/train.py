#!/usr/bin/env python3
"""Trains GPT-NeoX/MLKV models on a byte-level text, writing directories mlkv serves unchanged.

  train.py pretrain --config CFG.json --data TEXT --out DIR [schedule flags]
  train.py uptrain  --init DIR --data TEXT --out DIR [schedule flags]
      continues a checkpoint, typically one `mlkv convert` made of a pretrained MHA model (the
      MLKV paper's recipe: convert, then uptrain on the same data for a fraction of the tokens)
  train.py split    --data TEXT --out-dir DIR   writes train.txt and val.txt (the 90/10 split)
  train.py eval     --model DIR --data TEXT     the validation loss, computed in PyTorch

Runs are deterministic under --seed: the weights start from the seed, and the batch of step s
is a function of (seed, s) alone. --checkpoint-every saves DIR/train_state.pt; --resume goes on
from it and ends with the weights an unbroken run would have. Input is checked before anything
is written: a bad config, missing data or an unwritable --out is an error naming it, exit 2.
"""

import argparse
import json
import math
import os
import sys
import time

# OpenMP threads that spin while they wait lose almost all their speed when anything else runs on
# the machine (a build beside a training run made it 40x slower); passive waiting costs ~25% on
# an idle machine and keeps a shared one usable. Set before torch starts its thread pool.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

import byte_data  # noqa: E402
import hf_checkpoint  # noqa: E402
from neox_model import ConfigError, NeoxConfig, NeoxModel  # noqa: E402

STATE_FILE = "train_state.pt"
SUMMARY_FILE = "training.json"
BYTE_VOCAB = 257  # the 256 bytes and <|endoftext|>


class UsageError(ValueError):
    pass


def positive_int(text):
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def positive_float(text):
    value = float(text)
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def non_negative_float(text):
    value = float(text)
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a number >= 0, got {text}")
    return value


def add_schedule_flags(p, lr):
    p.add_argument("--data", required=True, help="the training text (split 90/10 on bytes)")
    p.add_argument("--out", required=True, help="the model directory to write")
    p.add_argument("--steps", type=positive_int, default=1000)
    p.add_argument("--batch-size", type=positive_int, default=16)
    p.add_argument("--context", type=positive_int, default=None,
                   help="tokens per training window (default: max_position_embeddings)")
    p.add_argument("--lr", type=positive_float, default=lr, help="peak learning rate")
    p.add_argument("--min-lr-ratio", type=non_negative_float, default=0.1,
                   help="the cosine decay ends at lr x this")
    p.add_argument("--warmup-steps", type=int, default=100)
    p.add_argument("--weight-decay", type=non_negative_float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eval-every", type=positive_int, default=250)
    p.add_argument("--log-every", type=positive_int, default=10)
    p.add_argument("--checkpoint-every", type=positive_int, default=250)
    p.add_argument("--resume", action="store_true", help=f"go on from DIR/{STATE_FILE}")
    p.add_argument("--stop-after", type=positive_int, default=None,
                   help="save the state and stop after this step, to --resume later (training "
                        "in pieces)")
    p.add_argument("--dtype", choices=sorted(hf_checkpoint.DTYPE_NAMES), default="float32",
                   help="the dtype of the written weights")
    p.add_argument("--threads", type=positive_int, default=os.cpu_count())


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    pre = sub.add_parser("pretrain", help="train from random weights")
    pre.add_argument("--config", required=True, help="a config.json of the model to train")
    add_schedule_flags(pre, lr=1e-3)
    up = sub.add_parser("uptrain", help="continue a checkpoint (e.g. one `mlkv convert` made)")
    up.add_argument("--init", required=True, help="the model directory to start from")
    add_schedule_flags(up, lr=5e-4)
    split = sub.add_parser("split", help="write the train/validation split as two files")
    split.add_argument("--data", required=True)
    split.add_argument("--out-dir", required=True)
    ev = sub.add_parser("eval", help="the validation loss of a model, in PyTorch")
    ev.add_argument("--model", required=True)
    ev.add_argument("--data", required=True)
    ev.add_argument("--max-model-len", type=positive_int, default=None,
                    help="windows as `mlkv score` makes them (default: max_position_embeddings)")
    return parser.parse_args(argv)


def check_writable(out, resume):
    """Refuses an --out that cannot be written, or that holds a finished model."""
    if os.path.exists(out) and not os.path.isdir(out):
        raise UsageError(f"--out {out}: exists and is not a directory")
    if os.path.isdir(out) and os.path.exists(os.path.join(out, SUMMARY_FILE)):
        raise UsageError(f"--out {out}: already holds a trained model ({SUMMARY_FILE}); "
                         "choose another directory or remove it")
    if os.path.isdir(out) and os.listdir(out) and not resume:
        raise UsageError(f"--out {out}: is not empty (use --resume to go on from "
                         f"{STATE_FILE})")
    parent = os.path.abspath(out)
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent) or not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"--out {out}: {parent} is not a writable directory")


def load_start_model(args):
    """The model to train and the config it came from: random weights or --init's."""
    if args.mode == "pretrain":
        try:
            with open(args.config) as f:
                raw = json.load(f)
        except OSError as e:
            raise UsageError(f"--config {args.config}: {e.strerror}") from e
        except ValueError as e:
            raise UsageError(f"--config {args.config}: not JSON ({e})") from e
        cfg = NeoxConfig(raw)
        model = NeoxModel(cfg)
        model.init_weights(torch.Generator().manual_seed(args.seed))
    else:
        model = hf_checkpoint.load_model(args.init)
        cfg = model.cfg
    if cfg.vocab_size < BYTE_VOCAB:
        raise ConfigError(f"vocab_size: {cfg.vocab_size} cannot hold the {BYTE_VOCAB} "
                          "byte-level tokens")
    return model


def lr_at(step, args):
    """Linear warm-up to --lr, then a cosine down to lr x --min-lr-ratio at the last step."""
    if step < args.warmup_steps:
        return args.lr * (step + 1) / args.warmup_steps
    progress = (step - args.warmup_steps) / max(1, args.steps - args.warmup_steps)
    floor = args.lr * args.min_lr_ratio
    return floor + (args.lr - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def make_optimizer(model, args):
    """AdamW; matrices decay, biases, norms and embeddings do not."""
    decay = [p for n, p in model.named_parameters() if p.dim() == 2 and "embed_in" not in n]
    rest = [p for n, p in model.named_parameters() if not (p.dim() == 2 and "embed_in" not in n)]
    return torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                              {"params": rest, "weight_decay": 0.0}],
                             lr=args.lr, betas=(0.9, 0.95), eps=1e-8)


def run_fingerprint(args, cfg):
    """What a resumed run must share with the run it continues."""
    keys = ("mode", "steps", "batch_size", "context", "lr", "min_lr_ratio", "warmup_steps",
            "weight_decay", "seed")
    return {"args": {k: getattr(args, k) for k in keys}, "config": cfg.raw}


def save_state(path, state):
    tmp = path + ".tmp"
    torch.save(state, tmp)
    os.replace(tmp, path)  # a crash mid-save leaves the previous state whole


def format_duration(seconds):
    seconds = int(seconds)
    return f"{seconds // 3600}h{seconds // 60 % 60:02d}m" if seconds >= 3600 else \
        f"{seconds // 60}m{seconds % 60:02d}s"


def train(args):
    torch.set_num_threads(args.threads)
    check_writable(args.out, args.resume)
    model = load_start_model(args)
    cfg = model.cfg
    args.context = args.context or cfg.max_position_embeddings
    train_bytes, val_bytes = byte_data.read_split(args.data)
    if len(train_bytes) <= args.context + 1:
        raise byte_data.DataError(f"{args.data}: {len(train_bytes)} training bytes is too few "
                                  f"for windows of --context {args.context}")
    if len(val_bytes) < 2:
        raise byte_data.DataError(f"{args.data}: too short to hold out validation bytes")
    train_ids = byte_data.to_ids(train_bytes, cfg.eos_token_id)
    val_ids = byte_data.to_ids(val_bytes, cfg.eos_token_id)
    optimizer = make_optimizer(model, args)
    fingerprint = run_fingerprint(args, cfg)
    state_path = os.path.join(args.out, STATE_FILE)

    step, elapsed, history = 0, 0.0, []
    if args.resume and os.path.exists(state_path):
        state = torch.load(state_path)
        if state["fingerprint"] != fingerprint:
            raise UsageError(f"--resume: {state_path} belongs to a run with other flags or "
                             "another config")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        step, elapsed, history = state["step"], state["elapsed_s"], state["history"]
        print(f"resuming from step {step} of {args.steps}", flush=True)
    os.makedirs(args.out, exist_ok=True)

    tokens_per_step = args.batch_size * args.context
    model.train()
    window_start, window_steps = time.time(), 0
    while step < args.steps:
        started = time.time()
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, args)
        inputs, targets = byte_data.training_batch(train_ids, args.batch_size, args.context,
                                                   args.seed, step)
        logits = model(inputs)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                                 targets.reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        step += 1
        elapsed += time.time() - started
        window_steps += 1
        if step % args.log_every == 0 or step == args.steps:
            rate = window_steps * tokens_per_step / max(1e-9, time.time() - window_start)
            eta = (args.steps - step) * tokens_per_step / rate
            print(f"step {step}/{args.steps} loss {loss.item():.4f} lr {lr_at(step - 1, args):.2e} "
                  f"tok/s {rate:,.0f} elapsed {format_duration(elapsed)} "
                  f"eta {format_duration(eta)}", flush=True)
            window_start, window_steps = time.time(), 0
        if step % args.eval_every == 0 or step == args.steps:
            val = byte_data.validation_loss(model, val_ids, cfg.max_position_embeddings)
            history.append({"step": step, "train_loss": loss.item(), "val_loss": val})
            print(f"step {step} val_loss {val:.4f} nats/byte ({byte_data.bits(val):.4f} bits/byte)",
                  flush=True)
            window_start = time.time()  # the evaluation is not training throughput
        stopping = step == args.stop_after and step < args.steps
        if (step % args.checkpoint_every == 0 or stopping) and step < args.steps:
            save_state(state_path, {"fingerprint": fingerprint, "step": step,
                                    "elapsed_s": elapsed, "history": history,
                                    "model": model.state_dict(),
                                    "optimizer": optimizer.state_dict()})
            window_start = time.time()
        if stopping:
            print(f"stopped after step {step}; --resume goes on from {state_path}", flush=True)
            return

    hf_checkpoint.write_model(model, args.out, hf_checkpoint.DTYPE_NAMES[args.dtype])
    summary = {
        "mode": args.mode,
        "init": getattr(args, "init", None),
        "data": os.path.abspath(args.data),
        "train_bytes": len(train_bytes), "val_bytes": len(val_bytes),
        "steps": args.steps, "batch_size": args.batch_size, "context": args.context,
        "tokens": args.steps * tokens_per_step,
        "lr": args.lr, "min_lr_ratio": args.min_lr_ratio, "warmup_steps": args.warmup_steps,
        "weight_decay": args.weight_decay, "seed": args.seed, "threads": args.threads,
        "train_seconds": round(elapsed, 1),
        "val_nats_per_byte_pytorch": history[-1]["val_loss"],
        "history": history,
        "command": " ".join(["tools/train/train.py"] + sys.argv[1:]),
    }
    with open(os.path.join(args.out, SUMMARY_FILE), "w") as f:
        json.dump(summary, f, indent=2)
        f.write("\n")
    if os.path.exists(state_path):
        os.remove(state_path)
    print(f"wrote {args.out}: {args.steps} steps, {summary['tokens']:,} tokens, "
          f"{format_duration(elapsed)}, val {history[-1]['val_loss']:.4f} nats/byte", flush=True)


def split(args):
    train_bytes, val_bytes = byte_data.read_split(args.data)
    os.makedirs(args.out_dir, exist_ok=True)
    for name, data in (("train.txt", train_bytes), ("val.txt", val_bytes)):
        with open(os.path.join(args.out_dir, name), "wb") as f:
            f.write(data)


def evaluate(args):
    model = hf_checkpoint.load_model(args.model)
    _, val_bytes = byte_data.read_split(args.data)
    ids = byte_data.to_ids(val_bytes, model.cfg.eos_token_id)
    val = byte_data.validation_loss(model, ids,
                                    args.max_model_len or model.cfg.max_position_embeddings)
    print(json.dumps({"val_nats_per_byte": val, "val_bits_per_byte": byte_data.bits(val)}))


def main(argv):
    args = parse_args(argv)
    try:
        if args.mode == "split":
            split(args)
        elif args.mode == "eval":
            evaluate(args)
        else:
            train(args)
    except (UsageError, ConfigError, hf_checkpoint.CheckpointError, byte_data.DataError) as e:
        print(f"train.py {args.mode}: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
