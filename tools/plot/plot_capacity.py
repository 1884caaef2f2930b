#!/usr/bin/env python3
"""Charts for capacity planning, from mlkv-loadgen summaries and `mlkv capacity --format json`.

  plot_capacity.py --loadgen run.json [--loadgen other.json ...] [--capacity cap.json]
                   --out-dir DIR [--title TEXT]

Writes, in DIR:
  throughput_vs_load.png  output tokens/s and requests/s against concurrency (or request rate),
                          one line per --loadgen file
  latency_vs_load.png     TTFT and ITL p50/p90/p99 against the same load
  max_concurrency.png     the most concurrent sequences per variant (from --capacity), one bar
                          group per context length

A loadgen file is the --summary-json of one sweep (closed loop: x is the concurrency; open loop:
the request rate; an "inf" rate has no place on the axis and is left out, said on stderr).
Needs matplotlib (Debian: python3-matplotlib). Exit status: 0, 1 on unusable input, 2 on bad flags.
"""
import argparse
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")  # files only; no display
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

# Loads as plain numbers (1, 4, 64, 0.5), not powers of two.
PLAIN = FuncFormatter(lambda value, _: f"{value:g}")


class InputError(Exception):
    """An input file that cannot be plotted; the message names it."""


def load_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except OSError as e:
        raise InputError(f"{path}: cannot be read: {e.strerror}") from e
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: not JSON: {e}") from e


def loadgen_series(path):
    """(label, x-axis name, points sorted by load) of one loadgen summary."""
    summary = load_json(path)
    points = summary.get("points") if isinstance(summary, dict) else None
    if not isinstance(points, list):
        raise InputError(f"{path}: no \"points\" list: not an mlkv-loadgen --summary-json file")
    usable = []
    for i, p in enumerate(points):
        closed = p.get("mode") == "closed_loop"
        x = p.get("concurrency") if closed else p.get("request_rate")
        if x == "inf":
            print(f"plot_capacity: {path}: point {i} (rate inf) has no place on the axis; skipped",
                  file=sys.stderr)
            continue
        if not isinstance(x, (int, float)) or p.get("completed", 0) == 0:
            print(f"plot_capacity: {path}: point {i} completed nothing; skipped", file=sys.stderr)
            continue
        usable.append((x, p))
    if not usable:
        raise InputError(f"{path}: no point with completed requests to plot")
    modes = {p.get("mode") for _, p in usable}
    if len(modes) != 1:
        raise InputError(f"{path}: mixes closed- and open-loop points")
    axis = "concurrency" if modes == {"closed_loop"} else "request rate (req/s)"
    label = os.path.splitext(os.path.basename(path))[0]
    return label, axis, sorted(usable, key=lambda xp: xp[0])


def style_load_axes(ax, legend_size):
    """Log-log axes with the load as plain numbers on x, a light grid and the legend."""
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_formatter(PLAIN)
    ax.set_yscale("log")  # models of very different sizes share the chart
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=legend_size)


def save(fig, out, suptitle):
    fig.suptitle(suptitle)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def plot_throughput(series, out, title):
    fig, (tokens, requests) = plt.subplots(1, 2, figsize=(11, 4.2))
    for label, axis, points in series:
        xs = [x for x, _ in points]
        tokens.plot(xs, [p["output_tokens_per_s"] for _, p in points], marker="o", label=label)
        requests.plot(xs, [p["requests_per_s"] for _, p in points], marker="o", label=label)
        tokens.set_xlabel(axis)
        requests.set_xlabel(axis)
    tokens.set_ylabel("output tokens/s")
    requests.set_ylabel("completed requests/s")
    for ax in (tokens, requests):
        style_load_axes(ax, legend_size=8)
    save(fig, out, title or "Throughput vs load")


def plot_latency(series, out, title):
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, metric, name in ((axes[0], "ttft_ms", "time to first token"),
                             (axes[1], "itl_ms", "inter-token latency")):
        for label, axis, points in series:
            xs = [x for x, p in points if p.get(metric)]
            for stat, style in (("p50", "-"), ("p90", "--"), ("p99", ":")):
                ys = [p[metric][stat] for _, p in points if p.get(metric)]
                if ys:
                    ax.plot(xs, ys, style, marker="o", label=f"{label} {stat}")
            ax.set_xlabel(axis)
        ax.set_ylabel(f"{name} (ms)")
        style_load_axes(ax, legend_size=7)
    save(fig, out, title or "Latency percentiles vs load")


def plot_max_concurrency(path, out, title):
    capacity = load_json(path)
    rows = capacity.get("rows") if isinstance(capacity, dict) else None
    if not rows:
        raise InputError(f"{path}: no \"rows\": not an `mlkv capacity --format json` file")
    try:
        # Most KV bytes per token first: MHA, then GQA/MQA/MLKV as they share more.
        kv_bytes = {r["variant"]: r["kv_bytes_per_token"] for r in rows}
        variants = sorted(kv_bytes, key=lambda v: -kv_bytes[v])
        contexts = sorted({r["context_len"] for r in rows})
        value = {(r["variant"], r["context_len"]): r["max_concurrent_sequences"] for r in rows}
        budget = max(r["kv_budget_bytes"] for r in rows)
    except (KeyError, TypeError) as e:
        raise InputError(f"{path}: a row lacks {e}") from e
    fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(variants)), 4.5))
    width = 0.8 / len(contexts)
    for i, ctx in enumerate(contexts):
        xs = [v + (i - (len(contexts) - 1) / 2) * width for v in range(len(variants))]
        ax.bar(xs, [value.get((v, ctx), 0) for v in variants], width, label=f"context {ctx}")
    ax.set_xticks(range(len(variants)))
    ax.set_xticklabels(variants, rotation=30, ha="right", fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("max concurrent sequences")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title or f"Max concurrency per variant (KV budget {budget / 1e9:.1f} GB)")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--loadgen", action="append", default=[],
                        help="an mlkv-loadgen --summary-json file (repeatable)")
    parser.add_argument("--capacity", help="the output of `mlkv capacity --format json`")
    parser.add_argument("--out-dir", required=True)
    parser.add_argument("--title", default="")
    args = parser.parse_args(argv)
    if not args.loadgen and not args.capacity:
        parser.error("give --loadgen and/or --capacity: there is nothing to plot")
    try:
        os.makedirs(args.out_dir, exist_ok=True)
        written = []
        if args.loadgen:
            series = [loadgen_series(path) for path in args.loadgen]
            written.append(os.path.join(args.out_dir, "throughput_vs_load.png"))
            plot_throughput(series, written[-1], args.title)
            written.append(os.path.join(args.out_dir, "latency_vs_load.png"))
            plot_latency(series, written[-1], args.title)
        if args.capacity:
            written.append(os.path.join(args.out_dir, "max_concurrency.png"))
            plot_max_concurrency(args.capacity, written[-1], args.title)
    except InputError as e:
        print(f"plot_capacity: {e}", file=sys.stderr)
        return 1
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
