"""Figures of the experiments (matplotlib, Agg backend): each function writes ``<stem>.png`` and
``<stem>.svg`` and returns their paths. Inputs are the tables the experiments return."""
from __future__ import annotations

import math
import os
from typing import Sequence

import numpy as np

COLORS = {"resnet": "#1f77b4", "cnn": "#d62728"}
LABELS = {"resnet": "ResNet (shortcut, w0 = 0)", "cnn": "plain CNN (no shortcut, w0 on the sphere)"}


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, stem) -> list:
    stem = os.fspath(stem)
    os.makedirs(os.path.dirname(stem) or ".", exist_ok=True)
    paths = []
    for ext in ("png", "svg"):
        path = f"{stem}.{ext}"
        fig.savefig(path, dpi=130, bbox_inches="tight")
        paths.append(path)
    _plt().close(fig)
    return paths


def _select(rows, **where):
    return [r for r in rows if all(r.get(k) == v for k, v in where.items())]


def plot_trajectory(result: dict, stem) -> list:
    """Loss, angle phi, a.a* and |a - a*| along training, ResNet vs CNN runs (log scales)."""
    plt = _plt()
    rows, runs = result["rows"], result["runs"]
    fig, axes = plt.subplots(2, 2, figsize=(11, 7.5), sharex=True)
    panels = [("loss", "population loss L (log)", "log"), ("phi", "angle φ between u and u* (rad, log)", "log"),
              ("a_dot_astar", "a·a*  (symlog)", "symlog"), ("a_err", "‖a − a*‖ (log)", "log")]
    first = runs[0] if runs else {}
    for run in runs:
        r = _select(rows, run=run["run"])
        step = np.array([x["step"] for x in r], float) + 1.0
        arch = run["architecture"]
        style = "-" if arch == "resnet" else ("--" if run["outcome"] == "global" else ":")
        label = f"{'ResNet' if arch == 'resnet' else 'CNN'} run {run['run']}: {run['outcome']}"
        for ax, (col, _, _) in zip(axes.flat, panels):
            y = np.array([x[col] for x in r], float)
            if col in ("loss", "phi", "a_err"):
                y = np.maximum(y, 1e-32)
            ax.plot(step, y, style, color=COLORS[arch], lw=2.2 if arch == "resnet" else 1.3,
                    alpha=1.0 if arch == "resnet" else 0.8, label=label)
    resnet = [run for run in runs if run["architecture"] == "resnet"]
    for ax, (col, ylabel, scale) in zip(axes.flat, panels):
        ax.set_xscale("log")
        if scale == "symlog":
            ax.set_yscale("symlog", linthresh=1e-2)
            ax.axhline(0, color="0.5", lw=0.8)
        else:
            ax.set_yscale(scale)
        ax.set_ylabel(ylabel)
        ax.grid(True, which="major", alpha=0.3)
        if resnet and resnet[0]["stage1_end"] > 0:
            ax.axvspan(1, resnet[0]["stage1_end"] + 1, color=COLORS["resnet"], alpha=0.08)
    if resnet and resnet[0]["stage1_end"] > 0:
        axes[0, 0].text(1.1, 0.05, f"shaded: stage I of the ResNet run\n(a·a* < 0, w near 0; {resnet[0]['stage1_end']} steps)",
                        transform=axes[0, 0].get_xaxis_transform(), fontsize=8, color=COLORS["resnet"])
    for ax in axes[1]:
        ax.set_xlabel("gradient step + 1 (log)")
    axes[0, 1].legend(fontsize=8, loc="center right")
    fig.suptitle(f"Population gradient descent on one teacher (k = {first.get('k')}, p = {first.get('p')}, "
                 f"η = {first.get('lr')}): ResNet vs plain CNN from several random starts")
    fig.tight_layout()
    return _save(fig, stem)


def _rate_errors(rows):
    rate = np.array([r["rate"] for r in rows], float)
    lo = np.array([r["ci_low"] for r in rows], float)
    hi = np.array([r["ci_high"] for r in rows], float)
    return rate, np.maximum(np.vstack([rate - lo, hi - rate]), 0.0)  # rounding may put phat a hair outside


def plot_success(rows: Sequence[dict], stem) -> list:
    """Success rate vs k for each p (Wilson 95% error bars), and a heatmap over (k, p), ResNet vs CNN."""
    plt = _plt()
    ks = sorted({r["k"] for r in rows})
    ps = sorted({r["p"] for r in rows})
    archs = [a for a in ("resnet", "cnn") if any(r["architecture"] == a for r in rows)]
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.8), gridspec_kw={"width_ratios": [1.15, 1]})
    ax = axes[0]
    maps = {"resnet": plt.get_cmap("Blues"), "cnn": plt.get_cmap("Reds")}
    for arch in archs:
        for i, p in enumerate(ps):
            sel = sorted(_select(rows, p=p, architecture=arch), key=lambda r: r["k"])
            if not sel:
                continue
            rate, err = _rate_errors(sel)
            shade = maps[arch](0.45 + 0.5 * i / max(1, len(ps) - 1))
            offset = 1 + 0.03 * (i - (len(ps) - 1) / 2)  # keep overlapping error bars apart
            ax.errorbar([r["k"] * offset for r in sel], rate, yerr=err, fmt="o-", color=shade, capsize=3, ms=4,
                        label=f"{'ResNet' if arch == 'resnet' else 'CNN'}, p = {p}")
    ax.set_xscale("log")
    _plain_log_ticks(ax, ks, y=False)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("number of patches k (log)")
    ax.set_ylabel("fraction of runs reaching the global optimum")
    ax.set_title("ResNet (w0 = 0, blue) vs plain CNN (w0 on the sphere, red)", fontsize=10)
    ax.legend(fontsize=7, ncol=2, loc="lower left")
    ax.grid(True, alpha=0.3)
    ax = axes[1]
    grid = np.full((len(ps), len(ks)), np.nan)
    for r in rows:
        if r["architecture"] == "cnn":
            grid[ps.index(r["p"]), ks.index(r["k"])] = r["rate"]
    image = ax.imshow(grid, origin="lower", cmap="Reds_r", vmin=0, vmax=1, aspect="auto")
    for r in rows:
        if r["architecture"] != "cnn":
            continue
        i, j = ps.index(r["p"]), ks.index(r["k"])
        resnet = _select(rows, k=r["k"], p=r["p"], architecture="resnet")
        text = f"CNN {100 * r['rate']:.0f}%\n±{50 * (r['ci_high'] - r['ci_low']):.0f}"
        if resnet:
            text += f"\nResNet {100 * resnet[0]['rate']:.0f}%"
        ax.text(j, i, text, ha="center", va="center", fontsize=7, color="black")
    ax.set_xticks(range(len(ks)), [str(k) for k in ks])
    ax.set_yticks(range(len(ps)), [str(p) for p in ps])
    ax.set_xlabel("number of patches k")
    ax.set_ylabel("patch size p")
    ax.set_title("Plain CNN success rate (± half the 95% interval)", fontsize=10)
    fig.colorbar(image, ax=ax, label="CNN success rate")
    trials = sorted({r["trials"] for r in rows})
    steps = sorted({r["steps"] for r in rows})
    fig.suptitle(f"Success rate of population GD ({'/'.join(map(str, trials))} random teachers per point, "
                 f"{'/'.join(map(str, steps))} steps, η = {rows[0]['lr']})")
    fig.tight_layout()
    return _save(fig, stem)


def plot_convergence(result: dict, stem) -> list:
    """Median steps to reach L <= eps: vs k (log-log, fitted slopes) and vs 1/eps."""
    plt = _plt()
    rows, slopes = result["rows"], result["slopes"]
    ps, ks, epss = (sorted({r[n] for r in rows}) for n in ("p", "k", "eps"))
    p_fix = ps[len(ps) // 2]
    k_fix = ks[len(ks) // 2]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6))
    cmap = plt.get_cmap("viridis")
    for ax, variable, fixed_name, fixed_value, xs in ((axes[0], "k", "p", p_fix, ks), (axes[1], "p", "k", k_fix, ps)):
        for i, eps in enumerate(sorted(epss, reverse=True)):
            sel = sorted(_select(rows, eps=eps, **{fixed_name: fixed_value}), key=lambda r: r[variable])
            x = np.array([r[variable] for r in sel], float)
            y = np.array([r["median_steps"] for r in sel], float)
            lo = y - np.array([r["q25_steps"] for r in sel], float)
            hi = np.array([r["q75_steps"] for r in sel], float) - y
            fit = [s for s in slopes if s["variable"] == variable and s[fixed_name] == fixed_value and s["eps"] == eps]
            slope = fit[0]["slope"] if fit else math.nan
            color = cmap(i / max(1, len(epss) - 1))
            ax.errorbar(x, y, yerr=[lo, hi], fmt="o", color=color, capsize=3,
                        label=f"ε = {eps:.0e}: slope {slope:.2f}")
            if fit and np.isfinite(slope):
                xx = np.linspace(x.min(), x.max(), 50)
                ax.plot(xx, np.exp(fit[0]["intercept"]) * xx ** slope, "-", color=color, lw=1)
        ax.set_xscale("log")
        ax.set_yscale("log")
        _plain_log_ticks(ax, xs)
        ax.set_xlabel(f"{'number of patches k' if variable == 'k' else 'patch size p'} (log)")
        ax.set_ylabel("median steps to reach L ≤ ε (log)")
        ax.set_title(f"vs {variable} at {fixed_name} = {fixed_value}: T ∝ {variable}^slope", fontsize=10)
        ax.legend(fontsize=8)
        ax.grid(True, which="both", alpha=0.3)
    ax = axes[2]
    for i, k in enumerate(ks):
        sel = sorted(_select(rows, k=k, p=p_fix), key=lambda r: -r["eps"])
        ax.plot([math.log10(1 / r["eps"]) for r in sel], [r["median_steps"] for r in sel], "o-",
                color=plt.get_cmap("plasma")(i / max(1, len(ks) - 1)), label=f"k = {k}")
    ax.set_xlabel("log10(1/ε)")
    ax.set_ylabel("median steps to reach L ≤ ε")
    ax.set_title(f"vs accuracy at p = {p_fix} (straight line: linear convergence)", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(True, alpha=0.3)
    lr = rows[0]["lr"] if rows else None
    fig.suptitle(f"Polynomial time: ResNet from w0 = 0, population GD with η = {lr} (medians, bars: quartiles)")
    fig.tight_layout()
    return _save(fig, stem)


def _plain_log_ticks(ax, values, y=True):
    from matplotlib.ticker import FixedLocator, NullLocator, ScalarFormatter

    ax.xaxis.set_major_locator(FixedLocator(list(values)))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(ScalarFormatter())
    if y:
        ax.yaxis.set_major_formatter(ScalarFormatter())
        ax.yaxis.set_minor_formatter(ScalarFormatter())


def plot_phase(rows: Sequence[dict], stem) -> list:
    """Success rate vs the teacher's angle to the shortcut direction (phase diagram)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.5, 4.6))
    for arch in ("resnet", "cnn"):
        sel = sorted(_select(rows, architecture=arch), key=lambda r: r["angle_deg"])
        if not sel:
            continue
        x = np.array([r["angle_deg"] for r in sel], float)
        rate, err = _rate_errors(sel)
        ax.fill_between(x, rate - err[0], rate + err[1], color=COLORS[arch], alpha=0.15)
        ax.plot(x, rate, "o-", color=COLORS[arch], label=LABELS[arch])
    ax.axvline(90, color="0.5", ls="--", lw=0.8)
    ax.text(91, 0.5, "right angle", fontsize=8, color="0.4", rotation=90, va="center")
    ax.set_xlabel("angle between the teacher filter u* and the shortcut s (degrees)")
    ax.set_ylabel("fraction of runs reaching the global optimum")
    ax.set_ylim(-0.03, 1.05)
    ax.set_xticks(np.arange(0, 181, 30))
    first = rows[0] if rows else {}
    ax.set_title(f"Where the ResNet guarantee breaks (k = {first.get('k')}, p = {first.get('p')}, "
                 f"{first.get('trials')} teachers per point, 95% Wilson bands)", fontsize=10)
    ax.legend(fontsize=9, loc="center left")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    return _save(fig, stem)


def _floor(values, floor=1e-32):
    """Values for a log axis: None (nothing to show) becomes nan, zero the floor."""
    return np.array([math.nan if v is None else max(float(v), floor) for v in values], float)


def _log_y(ax):
    """A log y axis when the axes hold positive data (a tiny run may have none to show)."""
    data = [np.asarray(line.get_ydata(), float) for line in ax.get_lines()]
    if any(np.any(np.isfinite(y) & (y > 0)) for y in data):
        ax.set_yscale("log")
    else:
        ax.text(0.5, 0.5, "no run to show", transform=ax.transAxes, ha="center", color="0.4")


def _failed_median(rows, column, fewest=5):
    """The failed runs' median of ``column`` per row, nan where fewer than ``fewest`` runs failed
    (the median of one or two runs says little)."""
    return [r[column] if r["trials"] - r["successes"] >= fewest else None for r in rows]


def _lr_styles(lrs):
    """Marker and line style per step size, in the order given (first: filled circles, solid)."""
    styles = [("o", "-"), ("s", "--"), ("^", ":"), ("D", "-.")]
    return {lr: styles[i % len(styles)] for i, lr in enumerate(lrs)}


def plot_sgd(rows: Sequence[dict], stem) -> list:
    """Online SGD vs population GD: success rate, steps to L <= tol and final losses vs the batch size."""
    plt = _plt()
    sizes = sorted({r["batch_size"] for r in rows}, key=lambda b: (b == 0, b))
    lrs = sorted({r["lr"] for r in rows}, reverse=True)
    archs = [a for a in ("resnet", "cnn") if any(r["architecture"] == a for r in rows)]
    x_of = {b: i for i, b in enumerate(sizes)}
    labels = ["population\nGD" if b == 0 else str(b) for b in sizes]
    styles = _lr_styles(lrs)
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8))
    for arch in archs:
        for j, lr in enumerate(lrs):
            sel = sorted(_select(rows, architecture=arch, lr=lr), key=lambda r: x_of[r["batch_size"]])
            if not sel:
                continue
            marker, line = styles[lr]
            shift = 0.06 * ((archs.index(arch) * len(lrs) + j) - (len(archs) * len(lrs) - 1) / 2)
            x = np.array([x_of[r["batch_size"]] for r in sel], float) + shift
            name = f"{'ResNet' if arch == 'resnet' else 'CNN'}, η = {lr:g}"
            rate, err = _rate_errors(sel)
            axes[0].errorbar(x, rate, yerr=err, fmt=marker + line, color=COLORS[arch], capsize=3, ms=5, label=name)
            axes[0].plot(x, [r["basin_rate"] for r in sel], marker, color=COLORS[arch], ms=9, mfc="none", alpha=0.6)
            median = _floor([r["median_steps"] for r in sel])
            lo = median - _floor([r["q25_steps"] for r in sel])
            hi = _floor([r["q75_steps"] for r in sel]) - median
            axes[1].errorbar(x, median, yerr=[np.nan_to_num(lo), np.nan_to_num(hi)], fmt=marker + line,
                             color=COLORS[arch], capsize=3, ms=5, label=name)
            axes[2].plot(x, _floor([r["median_final_loss"] for r in sel]), marker + line, color=COLORS[arch], ms=5,
                         label=f"{name}: all runs")
            axes[2].plot(x, _floor(_failed_median(sel, "median_failed_loss")), marker + ":", color=COLORS[arch],
                         ms=5, mfc="none", label=f"{name}: runs that failed (5 or more)")
    first = rows[0]
    for ax in axes:
        ax.set_xticks(range(len(sizes)), labels)
        ax.set_xlabel("batch size of online SGD (a fresh Gaussian batch every step)")
        ax.grid(True, alpha=0.3)
    lowest = min(min(r["ci_low"], r["basin_rate"]) for r in rows)
    axes[0].set_ylim(max(0.0, lowest - 0.08), 1.03)
    axes[0].set_ylabel("fraction of runs reaching the global optimum")
    axes[0].set_title(f"Success rate ({first['trials']} teachers per point, 95% Wilson intervals;\n"
                      "hollow: ended in the global basin, φ < π/2 and a·a* > 0)", fontsize=10)
    axes[0].legend(fontsize=8, loc="lower right")
    _log_y(axes[1])
    axes[1].set_ylabel(f"steps to reach L ≤ {first['tol']:g} (log)")
    axes[1].set_title("Steps to the tolerance of the runs that reached it (median, bars: quartiles)", fontsize=10)
    _log_y(axes[2])
    axes[2].set_ylabel("median final population loss (log)")
    axes[2].set_title(f"Median final population loss (runs stop at L ≤ {first['tol']:g})", fontsize=10)
    axes[2].legend(fontsize=7, loc="center right")
    steps = "/".join(str(s) for s in sorted({r["steps"] for r in rows}))
    fig.suptitle(f"Online SGD vs population GD (k = {first['k']}, p = {first['p']}, at most {steps} steps; "
                 "the same teachers and starts in every column)")
    fig.tight_layout()
    return _save(fig, stem)


def plot_sample_complexity(rows: Sequence[dict], stem) -> list:
    """Full-batch GD on n_train samples: success rate, fits of the training set and final losses vs n_train."""
    plt = _plt()
    archs = [a for a in ("resnet", "cnn") if any(r["architecture"] == a for r in rows)]
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.8))
    first = rows[0]
    for arch in archs:
        sel = sorted(_select(rows, architecture=arch), key=lambda r: r["n_train"])
        n = np.array([r["n_train"] for r in sel], float)
        name = "ResNet" if arch == "resnet" else "CNN"
        rate, err = _rate_errors(sel)
        axes[0].fill_between(n, rate - err[0], rate + err[1], color=COLORS[arch], alpha=0.15)
        axes[0].plot(n, rate, "o-", color=COLORS[arch], label=f"{name}: reached the teacher (global)")
        axes[0].plot(n, [r["basin_rate"] for r in sel], "x--", color=COLORS[arch], alpha=0.7,
                     label=f"{name}: ended in the global basin (φ < π/2, a·a* > 0)")
        axes[1].plot(n, _floor(_failed_median(sel, "median_failed_loss")), "o-", color=COLORS[arch],
                     label=f"{name}: population loss")
        axes[1].plot(n, _floor(_failed_median(sel, "median_failed_train_loss")), "x--", color=COLORS[arch],
                     alpha=0.7, label=f"{name}: training loss")
    params = first["k"] + first["p"]
    _log_y(axes[1])  # before the marker line below, which is not data
    for ax in axes:
        ax.set_xscale("log")
        ax.axvline(params, color="0.5", ls=":", lw=1)
        ax.set_xlabel("training-set size n_train (log)")
        ax.grid(True, which="major", alpha=0.3)
    axes[0].text(params * 1.05, 0.5, f"n = k + p = {params}", rotation=90, va="center", fontsize=8, color="0.4")
    axes[0].set_ylim(-0.02, 1.06)
    axes[0].set_ylabel("fraction of runs")
    axes[0].set_title(f"Success rate ({first['trials']} teachers per point, 95% Wilson bands)", fontsize=10)
    axes[0].legend(fontsize=8, loc="center right")
    axes[1].set_ylabel("median final loss (log)")
    axes[1].set_title("Median final losses of the runs that did not reach the teacher (5 or more)", fontsize=10)
    axes[1].legend(fontsize=8)
    fig.suptitle(f"Full-batch GD on a finite training set (k = {first['k']}, p = {first['p']}, η = {first['lr']}, "
                 f"at most {first['steps']} steps)")
    fig.tight_layout()
    return _save(fig, stem)


def plot_optimizers(rows: Sequence[dict], stem) -> list:
    """GD, momentum, Nesterov and Adam: success rate (and global basin) and steps to L <= eps."""
    plt = _plt()
    names = list(dict.fromkeys(r["optimizer"] for r in rows))
    archs = [a for a in ("resnet", "cnn") if any(r["architecture"] == a for r in rows)]
    x = np.arange(len(names))
    width = 0.8 / max(1, len(archs))
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.8))
    for j, arch in enumerate(archs):
        sel = [_select(rows, architecture=arch, optimizer=name)[0] for name in names]
        offset = x + (j - (len(archs) - 1) / 2) * width
        rate, err = _rate_errors(sel)
        axes[0].bar(offset, rate, width, yerr=err, capsize=3, color=COLORS[arch], alpha=0.85, label=LABELS[arch])
        axes[0].plot(offset, [r["basin_rate"] for r in sel], "D", color="k", mfc="white", ms=6, ls="none",
                     label="ended in the global basin (φ < π/2, a·a* > 0)" if j == 0 else None)
        median = _floor([r["median_steps"] for r in sel])
        q = {name: _floor([r[f"{name}_steps"] for r in sel]) for name in ("q10", "q25", "q75", "q90")}
        axes[1].errorbar(offset, median, yerr=[np.nan_to_num(median - q["q10"]), np.nan_to_num(q["q90"] - median)],
                         fmt="none", ecolor=COLORS[arch], elinewidth=1, capsize=4)
        axes[1].errorbar(offset, median, yerr=[np.nan_to_num(median - q["q25"]), np.nan_to_num(q["q75"] - median)],
                         fmt="o", color=COLORS[arch], elinewidth=4, ms=6,
                         label=f"{'ResNet' if arch == 'resnet' else 'CNN'}")
    ticks = []
    for name in names:
        r = _select(rows, optimizer=name)[0]
        extra = f", β = {r['beta']:g}" if r.get("beta") is not None else ""
        ticks.append(f"{name}\nη = {r['lr']:g}{extra}")
    for ax in axes:
        ax.set_xticks(x, ticks)
        ax.grid(True, axis="y", alpha=0.3)
    first = rows[0]
    axes[0].set_ylim(0, 1.32)
    axes[0].set_yticks(np.linspace(0, 1, 6))
    axes[0].set_ylabel("fraction of runs reaching the global optimum")
    axes[0].set_title(f"Success rate ({first['trials']} teachers each, 95% Wilson intervals)", fontsize=10)
    axes[0].legend(fontsize=8, loc="upper center", ncol=2)
    axes[1].set_ylabel(f"steps to reach L ≤ {first['eps']:g}")
    axes[1].set_title("Steps of the runs that reached ε (dot: median, thick: quartiles, thin: 10–90%)", fontsize=10)
    axes[1].legend(fontsize=8)
    axes[1].set_ylim(bottom=0)
    fig.suptitle(f"Optimizers on the population loss (k = {first['k']}, p = {first['p']}, "
                 f"at most {first['steps']} steps, the same teachers and starts for each)")
    fig.tight_layout()
    return _save(fig, stem)


def plot_stride(rows: Sequence[dict], stem) -> list:
    """Success rate vs the patch stride (stride < p: overlapping patches)."""
    plt = _plt()
    strides = sorted({r["stride"] for r in rows}, reverse=True)
    archs = [a for a in ("resnet", "cnn") if any(r["architecture"] == a for r in rows)]
    x = np.arange(len(strides))
    width = 0.8 / max(1, len(archs))
    fig, ax = plt.subplots(figsize=(7.5, 4.6))
    p = rows[0]["p"]
    for j, arch in enumerate(archs):
        sel = [_select(rows, architecture=arch, stride=s)[0] for s in strides]
        rate, err = _rate_errors(sel)
        ax.bar(x + (j - (len(archs) - 1) / 2) * width, rate, width, yerr=err, capsize=3, color=COLORS[arch],
               alpha=0.85, label=LABELS[arch])
    ax.set_xticks(x, [f"stride {s}" + ("\n(no overlap)" if s == p else "") for s in strides])
    ax.set_ylim(0, 1.08)
    ax.set_ylabel("fraction of runs reaching the global optimum")
    ax.set_title(f"Overlapping patches (k = {rows[0]['k']}, p = {p}, {rows[0]['trials']} teachers each, "
                 f"{rows[0]['steps']} steps, 95% Wilson intervals)", fontsize=10)
    ax.set_xlabel("patch stride (patch j covers pixels j·stride ... j·stride + p − 1 of the input)")
    ax.legend(fontsize=9, loc="lower left")
    ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    return _save(fig, stem)


def _p_colors(plt, values, cmap="viridis"):
    return {v: plt.get_cmap(cmap)(i / max(1, len(values) - 1) * 0.85) for i, v in enumerate(values)}


def plot_success_limit(rows: Sequence[dict], fits: Sequence[dict], stem) -> list:
    """CNN success rate vs k for each p (95% Wilson bars, fitted limit + b/sqrt(k)), and vs p/k."""
    plt = _plt()
    ps = sorted({r["p"] for r in rows})
    colors = _p_colors(plt, ps)
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.8))
    for p in ps:
        sel = sorted(_select(rows, p=p), key=lambda r: r["k"])
        k = np.array([r["k"] for r in sel], float)
        rate, err = _rate_errors(sel)
        axes[0].errorbar(k, rate, yerr=err, fmt="o-", color=colors[p], capsize=3, ms=4, label=f"p = {p}")
        axes[1].errorbar(p / k, rate, yerr=err, fmt="o", color=colors[p], capsize=3, ms=4, label=f"p = {p}")
        fit = [f for f in fits if f["p"] == p]
        if fit:
            kk = np.geomspace(max(fit[0]["k_min"], k.min()), k.max(), 50)
            axes[0].plot(kk, fit[0]["limit"] + fit[0]["b"] / np.sqrt(kk) + fit[0]["c"] / kk, "--", color=colors[p],
                         lw=1)
    pooled = [f for f in fits if f["p"] is None]
    if pooled:
        f = pooled[0]
        axes[0].axhline(f["limit"], color="0.3", ls=":", lw=1)
        axes[0].text(rows[0]["k"], f["limit"] - 0.02, f"fitted limit {f['limit']:.4f} ± {f['limit_se']:.4f}",
                     fontsize=8, color="0.3")
    axes[0].set_xscale("log")
    axes[0].set_xlabel("number of patches k (log)")
    axes[1].set_xscale("log")
    axes[1].set_xlabel("p/k (log)")
    for ax in axes:
        ax.axhline(0.5, color="0.6", lw=0.8)
        ax.set_ylabel("fraction of CNN runs reaching the global basin")
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=8)
    axes[0].set_title("vs k (dashed: limit + b/√k + c/k fitted per p; dotted: the pooled limit)", fontsize=10)
    axes[1].set_title("vs p/k: the rate depends on k and p mainly through p/k", fontsize=10)
    first = rows[0]
    fig.suptitle(f"Plain CNN success probability, {first['trials']:,} trials per cell (95% Wilson bars), "
                 "η = min(0.1, π/(k + π − 1)) on both layers")
    fig.tight_layout()
    return _save(fig, stem)


def plot_hypotheses(rows: Sequence[dict], stem) -> list:
    """ResNet success rate as each start hypothesis is dropped: w0 norm, then a0's ball scale."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6))
    panels = ((axes[0], "w0_norm", "‖w0‖ (0: the theorem's w0 = 0; else a random direction)"),
              (axes[1], "a0_scale", "a0 uniform in the ball of radius c·|𝟙ᵀa*|/√k (c = 1: the theorem's ball)"))
    base = [r for r in rows if r["factor"] == "w0_norm" and r["w0_norm"] == 0.0]
    for ax, factor, label in panels:
        sel = [r for r in rows if r["factor"] == factor] + (base if factor == "a0_scale" else [])
        sel = sorted(sel, key=lambda r: r[factor])
        names = [("0" if r[factor] == 0 else f"{r[factor]:g}") for r in sel]
        x = np.arange(len(sel))
        rate, err = _rate_errors(sel)
        ax.bar(x, rate, 0.6, yerr=err, capsize=3, color=COLORS["resnet"], alpha=0.85, label="global optimum")
        ax.plot(x, [r["basin_rate"] for r in sel], "D", color="k", mfc="white", ms=6, ls="none",
                label="ended in the global basin (φ < π/2, a·a* > 0)")
        for xi, r in zip(x, sel):
            ax.text(xi, min(r["rate"], 1.0) + 0.03, f"{100 * r['rate']:.2f}%", ha="center", fontsize=8)
        ax.set_xticks(x, names)
        ax.set_xlabel(label, fontsize=9)
        ax.set_ylim(0, 1.15)
        ax.set_ylabel("fraction of ResNet runs")
        ax.grid(True, axis="y", alpha=0.3)
        ax.legend(fontsize=8, loc="lower left")
    first = rows[0]
    fig.suptitle(f"The theorem's hypotheses one at a time (ResNet, k = {first['k']}, p = {first['p']}, "
                 f"{first['trials']:,} teachers per bar, η = {first['lr']:g}, at most {first['steps']} steps)")
    fig.tight_layout()
    return _save(fig, stem)


def plot_step_phase(rows: Sequence[dict], stem) -> list:
    """Success rate and divergence rate over (lr_w, lr_a), per architecture, with lr_a = 4π/(k + π − 1)."""
    plt = _plt()
    archs = [a for a in ("resnet", "cnn") if any(r["architecture"] == a for r in rows)]
    lws = sorted({r["lr_w"] for r in rows})
    las = sorted({r["lr_a"] for r in rows})
    fig, axes = plt.subplots(len(archs), 2, figsize=(12, 4.2 * len(archs)), squeeze=False)
    limit = rows[0]["a_step_limit"]
    for i, arch in enumerate(archs):
        for j, (column, cmap, title) in enumerate((("rate", "viridis", "success rate"),
                                                   ("divergence_rate", "Reds", "divergence rate"))):
            ax = axes[i, j]
            grid = np.full((len(las), len(lws)), np.nan)
            for r in _select(rows, architecture=arch):
                grid[las.index(r["lr_a"]), lws.index(r["lr_w"])] = r[column]
            image = ax.pcolormesh(_edges(lws), _edges(las), grid, cmap=cmap, vmin=0, vmax=1, shading="flat")
            ax.axhline(limit, color="w" if column == "rate" else "k", ls="--", lw=1.2)
            ax.text(lws[0], limit * 1.05, f"η_a = 4π/(k + π − 1) = {limit:.3f}", fontsize=8,
                    color="w" if column == "rate" else "k")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("η_w (first layer, log)")
            ax.set_ylabel("η_a (second layer, log)")
            name = "ResNet (w0 = 0)" if arch == "resnet" else "plain CNN (w0 on the sphere)"
            ax.set_title(f"{name}: {title}", fontsize=10)
            fig.colorbar(image, ax=ax)
    first = rows[0]
    fig.suptitle(f"Step sizes per layer (k = {first['k']}, p = {first['p']}, {first['trials']} teachers per cell, "
                 f"at most {first['steps']} steps)")
    fig.tight_layout()
    return _save(fig, stem)


def _edges(values):
    """Cell edges on a log axis around sorted values (geometric midpoints)."""
    v = np.log(np.asarray(values, float))
    mid = (v[1:] + v[:-1]) / 2 if v.size > 1 else np.array([])
    first = v[0] - (mid[0] - v[0] if mid.size else 0.5)
    last = v[-1] + (v[-1] - mid[-1] if mid.size else 0.5)
    return np.exp(np.concatenate([[first], mid, [last]]))


def plot_scaling(result: dict, stem) -> list:
    """ResNet convergence to L <= eps up to k = 10^4: median steps and flow time (steps·η) vs k, and vs p."""
    plt = _plt()
    rows = result["rows"]
    ks, ps, epss = (sorted({r[n] for r in rows}) for n in ("k", "p", "eps"))
    p_fix, k_fix = ps[0], ks[-1]
    colors = _p_colors(plt, sorted(epss, reverse=True), "plasma")
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.6))
    for eps in sorted(epss, reverse=True):
        sel = sorted(_select(rows, p=p_fix, eps=eps), key=lambda r: r["k"])
        k = [r["k"] for r in sel]
        axes[0].plot(k, [r["median_steps"] for r in sel], "o-", color=colors[eps], label=f"ε = {eps:.0e}")
        axes[1].plot(k, [r["median_time"] for r in sel], "o-", color=colors[eps], label=f"ε = {eps:.0e}")
        sel = sorted(_select(rows, k=k_fix, eps=eps), key=lambda r: r["p"])
        axes[2].plot([r["p"] for r in sel], [r["median_time"] for r in sel], "o-", color=colors[eps],
                     label=f"ε = {eps:.0e}")
    slopes = {(s["variable"], s["eps"]): s["slope"] for s in result["time_slopes"]
              if (s["variable"] == "k" and s["p"] == p_fix)}
    steps_slopes = {s["eps"]: s["slope"] for s in result["slopes"] if s["variable"] == "k" and s["p"] == p_fix}
    tight = min(epss)
    for ax in axes:
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    axes[0].set_xlabel("number of patches k (log)")
    axes[0].set_ylabel("median steps to L ≤ ε (log)")
    axes[0].set_title(f"steps at p = {p_fix} (slope at ε = {tight:.0e}: {steps_slopes.get(tight, math.nan):.2f})",
                      fontsize=10)
    axes[1].set_xlabel("number of patches k (log)")
    axes[1].set_ylabel("median flow time steps·η (log)")
    axes[1].set_title(f"flow time at p = {p_fix} (slope at ε = {tight:.0e}: "
                      f"{slopes.get(('k', tight), math.nan):.2f})", fontsize=10)
    axes[2].set_xlabel("patch size p (log)")
    axes[2].set_ylabel("median flow time steps·η (log)")
    axes[2].set_title(f"flow time vs p at k = {k_fix}", fontsize=10)
    fig.suptitle("ResNet from w0 = 0 to k = 10^4, η = min(0.1, π/(k + π − 1)) on both layers "
                 f"(medians of {rows[0]['trials']} teachers)")
    fig.tight_layout()
    return _save(fig, stem)


def plot_gd_vs_flow(result: dict, stem) -> list:
    """Errors of GD against the gradient flow vs the step size (log-log, slope-1 guide)."""
    plt = _plt()
    rows = result["rows"]
    archs = [a for a in ("resnet", "cnn") if any(r["architecture"] == a for r in rows)]
    columns = [c for c in rows[0] if c.startswith("median_relative_time_error_")] + ["median_state_error"]
    styles = ["o-", "s--", "^:"]
    fig, ax = plt.subplots(figsize=(8, 5))
    for arch in archs:
        sel = sorted(_select(rows, architecture=arch), key=lambda r: r["lr"])
        lr = np.array([r["lr"] for r in sel], float)
        for column, style in zip(columns, styles):
            y = _floor([r[column] for r in sel])
            name = ("state distance at t = " + f"{sel[0]['t_fixed']:g}") if column == "median_state_error" else \
                "relative error of the time to L ≤ " + column.rsplit("_", 1)[1]
            ax.plot(lr, y, style, color=COLORS[arch], label=f"{'ResNet' if arch == 'resnet' else 'CNN'}: {name}")
    lr = np.array(sorted({r["lr"] for r in rows}), float)
    ax.plot(lr, lr * 0.5, color="0.5", lw=0.8, label="∝ η (guide)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("step size η of both layers (log)")
    ax.set_ylabel("median over teachers (log)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title(f"Gradient descent vs gradient flow (k = {rows[0]['k']}, p = {rows[0]['p']}, "
                 f"{rows[0]['trials']} teachers): errors O(η)", fontsize=10)
    fig.tight_layout()
    return _save(fig, stem)


def plot_phi_instability(rows: Sequence[dict], stem) -> list:
    """The phi instability near the optimum: how often it shows, and the steps it costs."""
    plt = _plt()
    ks = sorted({r["k"] for r in rows})
    colors = _p_colors(plt, ks, "plasma")
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6))
    for k in ks:
        sel = sorted(_select(rows, k=k), key=lambda r: r["fraction"])
        f = [r["fraction"] for r in sel]
        axes[0].plot(f, [r["shown_rate"] for r in sel], "o-", color=colors[k], label=f"k = {k}: showed it")
        axes[0].plot(f, [r["n_predicted"] / r["trials"] for r in sel], "x--", color=colors[k], ms=8,
                     label=f"k = {k}: predicted, |u0|² < η|a*|²/4")
        axes[1].plot(f, _floor([r["median_steps_shown"] for r in sel]), "o-", color=colors[k],
                     label=f"k = {k}: runs that showed it")
        axes[1].plot(f, _floor([r["median_steps_not_shown"] for r in sel]), "s:", color=colors[k], mfc="none",
                     label=f"k = {k}: the others")
    axes[0].set_ylabel("fraction of ResNet runs")
    axes[0].set_ylim(-0.03, 1.05)
    axes[1].set_ylabel(f"median steps to L ≤ {rows[0]['tol']:g} (log)")
    _log_y(axes[1])
    for ax in axes:
        ax.set_xlabel("η / (4π/(k + π − 1)), both layers")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"φ instability near the optimum (ResNet from w0 = 0, {rows[0]['trials']} teachers per point)")
    fig.tight_layout()
    return _save(fig, stem)
