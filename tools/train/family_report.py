#!/usr/bin/env python3
"""The quality-capacity table and chart of docs/models.md, from measure_family.py's JSON.

  family_report.py [--measurements build/models/shakespeare/measurements.json]
                   [--chart docs/charts/quality_vs_kv.png]

Prints the Markdown table; writes the chart of validation bits per byte against KV bytes per
token (the quality-memory frontier), before and after uptraining.
"""

import argparse
import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def table(data):
    base = data["models"][0]
    budget_mib = base["kv_budget_bytes"] >> 20
    lines = [
        f"| model | KV heads (layers x heads) | KV bytes/token (f16) | bits/byte converted | "
        f"bits/byte uptrained | vs MHA | sequences of {base['max_model_len']} in {budget_mib} MiB"
        f" | decode tok/s, batch {data['decode_batch']} | f16 KV change | bf16 KV change |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for m in data["models"]:
        converted = m.get("val_bpb_converted")
        lines.append(
            f"| {m['name']} | {m['kv_layers']} x {m['kv_heads']} | "
            f"{m['kv_bytes_per_token_f16']:,} | "
            f"{'-' if converted is None else f'{converted:.4f}'} | {m['val_bpb']:.4f} | "
            f"{m['val_bpb'] - base['val_bpb']:+.4f} | {m['sequences_in_budget']:,} | "
            f"{m['decode_tokens_per_s_batch32']:,.0f} | "
            f"{m['val_bpb_kv_f16'] - m['val_bpb']:+.5f} | "
            f"{m['val_bpb_kv_bf16'] - m['val_bpb']:+.5f} |")
    return "\n".join(lines)


def chart(data, path):
    fig, ax = plt.subplots(figsize=(7, 4.5))
    # The recipe's variants on the line; a longer uptraining of one (NAME-long) as a marker.
    models = [m for m in data["models"] if not m["name"].endswith("-long")]
    longer = [m for m in data["models"] if m["name"].endswith("-long")]
    kv = [m["kv_bytes_per_token_f16"] for m in models]
    ax.plot(kv, [m["val_bpb"] for m in models], "o-", label="after uptraining (a tenth of the "
            "base's tokens)")
    ax.plot([m["kv_bytes_per_token_f16"] for m in longer], [m["val_bpb"] for m in longer], "*",
            markersize=12, color="tab:green", label="after three times that")
    converted = [(m["kv_bytes_per_token_f16"], m["val_bpb_converted"]) for m in models
                 if "val_bpb_converted" in m]
    ax.plot([c[0] for c in converted], [c[1] for c in converted], "s--", color="tab:red",
            label="right after `mlkv convert`")
    for m in models + longer:
        ax.annotate(m["name"], (m["kv_bytes_per_token_f16"], m["val_bpb"]),
                    textcoords="offset points", xytext=(4, 6), fontsize=8)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("KV cache bytes per token (f16), log scale")
    ax.set_ylabel("validation bits per byte (mlkv score)")
    ax.set_title("Shakespeare family: quality against KV memory")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--measurements", default="build/models/shakespeare/measurements.json")
    parser.add_argument("--chart", default="docs/charts/quality_vs_kv.png")
    args = parser.parse_args()
    with open(args.measurements) as f:
        data = json.load(f)
    print(table(data))
    chart(data, args.chart)
    print(f"\nwrote {args.chart}")


if __name__ == "__main__":
    main()
