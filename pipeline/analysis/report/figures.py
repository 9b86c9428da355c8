"""The report's five figures, one function each; every one reads the results and the summary and writes a PNG."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...config import GROUPS
from ...orchestration.plan import ABLATION, WorkflowPlan
from .results import Results, fixed_rate
from .stats import finite

def _smooth(y: np.ndarray, width: int) -> np.ndarray:
    if width <= 1 or y.size < 2:
        return y
    width = min(width, y.size)
    kernel = np.ones(width) / width
    padded = np.concatenate([np.full(width - 1, y[0]), y])
    return np.convolve(padded, kernel, mode="valid")


def _branch_style(plan: WorkflowPlan, branch: str) -> dict:
    if branch == "learned":
        return {"color": "tab:blue", "lw": 1.6, "label": "learned taxes"}
    if branch == "consumer_welfare":
        return {"color": "tab:orange", "lw": 1.2, "label": "learned, consumer welfare"}
    if branch == ABLATION:
        return {"color": "tab:red", "lw": 1.0, "ls": "--", "label": "no curriculum"}
    rate = fixed_rate(plan, branch)
    shade = 0.25 + 0.5 * (rate or 0)
    return {"color": (shade, shade, shade), "lw": 0.9, "label": f"fixed {rate:.0%}"}


def training_curves(results: Results, summary: dict, path: Path) -> None:
    import matplotlib.pyplot as plt

    plan = results.plan
    economies = list(plan.economies)
    fig, axes = plt.subplots(len(economies), 3, figsize=(15, 3.6 * len(economies)), squeeze=False)
    bounds = [(stage.name, *results.stage_bounds[stage.name]) for stage in results.stages]
    prefix_end = bounds[len(plan.prefix_stages) - 1][2]
    for row, economy in enumerate(economies):
        for branch in plan.evaluated_branches():
            logs = [results.training_log(economy, s, branch) for s in plan.seeds]
            episodes = logs[0]["episode"]
            width = max(1, episodes.size // 40)
            # Smoothed over the whole history, so a branch starts where the shared prefix ends.
            own = episodes >= prefix_end - 1 if branch != ABLATION else np.ones_like(episodes, dtype=bool)
            for col, group in enumerate(GROUPS):
                series = _smooth(np.nanmean(np.stack([log[f"reward/{group}"] for log in logs]), axis=0), width)
                axes[row, col].plot(episodes[own], series[own], **_branch_style(plan, branch))
                if branch == "learned":
                    axes[row, col].plot(episodes[~own | (episodes == prefix_end - 1)],
                                        series[~own | (episodes == prefix_end - 1)], color="k", lw=1.4,
                                        label="shared prefix")
        for col, group in enumerate(GROUPS):
            ax = axes[row, col]
            for name, lo, hi in bounds:
                ax.axvline(lo, color="k", lw=0.5, alpha=0.4)
                ax.text((lo + hi) / 2, 1.0, name, transform=ax.get_xaxis_transform(), ha="center", va="bottom",
                        fontsize=7)
            ax.set_title(f"{economy}: {group} reward" + (" (its welfare objective)" if group == "government" else ""),
                         pad=14)
            ax.set_xlabel("episode")
        axes[row, 0].set_ylabel("per-agent episode return (smoothed)")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 7), fontsize=8)
    seeds = f"mean of {len(plan.seeds)} seeds" if len(plan.seeds) > 1 else f"seed {plan.seeds[0]}"
    fig.suptitle(f"Training curves ({seeds}); the branches continue the shared prefix stages")
    fig.tight_layout(rect=(0, 0.05, 1, 0.97))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def best_response(results: Results, summary: dict, path: Path) -> None:
    import matplotlib.pyplot as plt

    plan = results.plan
    groups = plan.best_response_types
    fig, axes = plt.subplots(2, max(len(groups), 1), figsize=(5 * max(len(groups), 1), 7.5), squeeze=False)
    runs = [(e, s, b) for e in plan.economies for s in plan.seeds for b in plan.best_response_branches]
    for col, group in enumerate(groups):
        ax = axes[0, col]
        x = np.arange(len(runs))
        for offset, which, color in ((-0.2, "before", "tab:gray"), (0.2, "after", "tab:green")):
            stats = [summary["economies"][e]["seeds"][str(s)]["epsilon_by_branch"][b][group][which] for e, s, b in runs]
            means = np.array([st["mean"] for st in stats])
            err = np.array([[st["mean"] - st["ci95"][0], st["ci95"][1] - st["mean"]] for st in stats]).T
            ax.bar(x + offset, means, width=0.4, yerr=np.nan_to_num(err), capsize=3, color=color, label=which)
        ax.set_xticks(x, [f"{e}/s{s}" + ("" if b == "learned" else f"/{b}") for e, s, b in runs], fontsize=8)
        ax.set_title(f"{group}: reward before / after best response")
        ax.legend(fontsize=8)
        ax = axes[1, col]
        for e, s, b in runs:
            curve = results.curves[e, s, b, group]
            key = f"reward/{group}"
            width = max(1, curve[key].size // 20)
            ax.plot(curve["episode"], _smooth(curve[key], width), label=f"{e}/s{s}")
        ax.set_title(f"{group}: best-response learning curve (smoothed)")
        ax.set_xlabel("best-response episode")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def welfare_vs_tax(results: Results, summary: dict, path: Path) -> None:
    import matplotlib.pyplot as plt

    plan = results.plan
    panels = (("welfare_total", "total welfare", "learned"),
              ("welfare_consumer_only", "consumer-only welfare",
               "consumer_welfare" if "consumer_welfare" in plan.branches else "learned"),
              ("consumer_reward", "consumer reward", "learned"),
              ("firm_reward", "firm reward", "learned"))
    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
    fixed = sorted((fixed_rate(plan, b), b) for b in plan.branches if fixed_rate(plan, b) is not None)
    colors = dict(zip(plan.economies, ("tab:blue", "tab:red", "tab:green", "tab:purple", "tab:brown")))
    # One seed: its 95% intervals. Several: every seed's own point (hollow) around the mean of the seeds;
    # a Student-t interval on two or three seed means is too wide to show anything.
    several = len(plan.seeds) > 1
    for ax, (name, label, policy) in zip(axes.ravel(), panels):
        for economy in plan.economies:
            out = summary["economies"][economy]["over_seeds"]["outcomes"]
            per_seed = [data["outcomes"] for data in summary["economies"][economy]["seeds"].values()]
            color = colors.get(economy, "k")
            if fixed:
                rates = [100 * r for r, _ in fixed]
                stats = [out[b][name] for _, b in fixed]
                means = np.array([s["mean"] for s in stats])
                err = None if several else np.nan_to_num(
                    np.array([[s["mean"] - s["ci95"][0], s["ci95"][1] - s["mean"]] for s in stats]).T)
                ax.errorbar(rates, means, yerr=err, marker="o", capsize=3, color=color,
                            label=f"{economy}: fixed taxes" + (" (mean of seeds)" if several else ""))
                if several:
                    for seed_out in per_seed:
                        ax.plot(rates, [seed_out[b][name]["mean"] for _, b in fixed], ls="none", marker="o",
                                mfc="none", ms=6, color=color, alpha=0.7)
            learned = out[policy][name]
            tax = 100 * out[policy]["income_tax_rate"]["mean"]
            lo, hi = learned["ci95"]
            ax.errorbar([tax], [learned["mean"]], yerr=[[learned["mean"] - lo], [hi - learned["mean"]]]
                        if finite(lo) and not several else None, marker="*", markersize=14, color=color, ls="none",
                        label=f"{economy}: {_branch_style(plan, policy)['label']} (at its mean income tax)")
            if several:
                ax.plot([100 * o[policy]["income_tax_rate"]["mean"] for o in per_seed],
                        [o[policy][name]["mean"] for o in per_seed], ls="none", marker="*", mfc="none", ms=11,
                        color=color, alpha=0.7)
        ax.set_xlabel("tax rate (%)")
        ax.set_title(label)
    axes[0, 0].legend(fontsize=7)
    fig.suptitle("Fixed tax rates (income = corporate) vs the learned tax policy" +
                 ("; hollow markers: each seed" if several else "; bars: 95% intervals"))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _trajectory(results: Results) -> tuple[str, int, dict]:
    plan = results.plan
    economy = "open" if "open" in plan.economies else next(iter(plan.economies))
    seed = plan.seeds[0]
    return economy, seed, results.evaluations[economy, seed, "learned"]["trajectory"]


def rollout_firms(results: Results, summary: dict, path: Path) -> None:
    import matplotlib.pyplot as plt

    economy, seed, traj = _trajectory(results)
    firm = traj["firm"]
    fields = ("price", "wage", "labor", "production", "sales", "exports")
    fig, axes = plt.subplots(2, 3, figsize=(14, 7))
    for ax, field in zip(axes.ravel(), fields):
        values = np.asarray(firm[field], dtype=float)  # (steps, firms)
        steps = np.arange(values.shape[0])
        for i in range(values.shape[1]):
            ax.plot(steps, values[:, i], lw=1, label=f"firm {i}")
        ax.set_title(field)
        ax.set_xlabel("step")
    axes[0, 0].legend(fontsize=7, ncol=2)
    fig.suptitle(f"One evaluated episode of the trained economy ({economy}, seed {seed}, learned taxes): firms")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def rollout_consumers(results: Results, summary: dict, path: Path) -> None:
    import matplotlib.pyplot as plt

    economy, seed, traj = _trajectory(results)
    consumer = traj["consumer"]
    fig, axes = plt.subplots(2, 2, figsize=(11, 7))
    for ax, field in zip(axes.ravel(), ("hours", "consumption", "budget")):
        values = np.asarray(consumer[field], dtype=float)  # (steps, consumers)
        steps = np.arange(values.shape[0])
        alpha = 0.8 if values.shape[1] <= 10 else 0.15
        ax.plot(steps, values, lw=0.8, alpha=alpha, color="tab:blue")
        ax.plot(steps, values.mean(1), lw=2.2, color="k", label="mean over consumers")
        ax.set_title(f"{field} per consumer")
        ax.set_xlabel("step")
        ax.legend(fontsize=7)
    ax = axes[1, 1]
    gov = traj["government"]
    steps = np.arange(len(gov["income_tax_rate"]))
    ax.step(steps, gov["income_tax_rate"], where="mid", label="income tax rate")
    ax.step(steps, gov["corporate_tax_rate"], where="mid", label="corporate tax rate")
    ax.set_ylim(-0.05, 1.05)
    ax.set_title("government")
    ax.set_xlabel("step")
    ax.legend(fontsize=7)
    fig.suptitle(f"The same episode ({economy}, seed {seed}, learned taxes): consumers and taxes")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


DRAW = {"training_curves": training_curves, "best_response": best_response, "welfare_vs_tax": welfare_vs_tax,
        "rollout_firms": rollout_firms, "rollout_consumers": rollout_consumers}
FIGURES = tuple(DRAW)


def write_figures(results: Results, summary: dict, out: Path) -> dict[str, Path]:
    """Every figure as out/<name>.png; `summary` is the report's dictionary before its NaNs become null."""
    import matplotlib

    matplotlib.use("Agg")
    out.mkdir(parents=True, exist_ok=True)
    paths = {name: out / f"{name}.png" for name in FIGURES}
    for name, draw in DRAW.items():
        draw(results, summary, paths[name])
    return paths
