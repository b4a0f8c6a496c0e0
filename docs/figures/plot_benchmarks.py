"""The benchmark figure of the documentation (docs/figures/benchmarks.png) from the recorded run in
benchmarks.json next to it: time per call of every contender, relative to the fastest, per group.

Rerun ``shortcutnet bench``, save its rows into benchmarks.json, then ``python plot_benchmarks.py``.
"""
from __future__ import annotations

import json
import pathlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import NullFormatter  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent
TITLES = {"materialized-f32": "loss and gradient on a stored float32 batch",
          "fused-f32": "a fresh float32 batch drawn, then its gradient"}


def main() -> None:
    record = json.loads((HERE / "benchmarks.json").read_text())
    groups = [g for g in TITLES if any(r["group"] == g for r in record["rows"])]
    fig, axes = plt.subplots(len(groups), 1, figsize=(7.5, 2.0 + 2.2 * len(groups)), squeeze=False)
    for ax, group in zip(axes[:, 0], groups):
        rows = sorted((r for r in record["rows"] if r["group"] == group), key=lambda r: r["seconds"])
        fastest = min(r["seconds"] for r in rows if not r["name"].startswith(("read bandwidth", "generator alone")))
        names = [r["name"] for r in rows]
        ms = [1e3 * r["seconds"] for r in rows]
        colors = ["tab:blue" if r["name"].startswith("shortcutnet") else "tab:gray" for r in rows]
        bars = ax.barh(names, ms, color=colors)
        for bar, r in zip(bars, rows):
            ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, f" {r['seconds'] / fastest:.1f}x",
                    va="center", fontsize=8)
        ax.set_xscale("log")
        ax.invert_yaxis()
        ax.set_xlabel("median ms per call (log scale); label: time relative to the fastest")
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_title(f"{group}: {TITLES[group]}\n(n = {rows[0]['n']} samples, k = 16, p = 64)", fontsize=9)
        ax.tick_params(axis="y", labelsize=8)
        ax.set_xlim(right=max(ms) * 4)
    fig.tight_layout()
    fig.savefig(HERE / "benchmarks.png", dpi=110)


if __name__ == "__main__":
    main()
