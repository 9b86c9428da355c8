"""The report's figures, one function each; every one reads the results and the summary and writes a PNG.

Over several seeds a figure shows every seed's own point and the over-seed mean with its Student-t
interval, the quantity the text's verdicts rest on; with one seed it shows that seed and says that no
interval over seeds exists. Economies get panels of their own, on their own scales: the closed
economy's numbers are orders of magnitude below the open one's.
"""

from __future__ import annotations

import itertools
import warnings
from pathlib import Path

import numpy as np

from ...config import GROUPS
from ...orchestration.plan import ABLATION, INDIVIDUAL, POWER, WorkflowPlan
from .markdown import num
from .results import Results, fixed_rates
from .stats import finite, over_seeds

LINE_STYLES = (":", "--", "-.", (0, (5, 1, 1, 1)), (0, (1, 2)))
ECONOMY_COLORS = ("tab:blue", "tab:red", "tab:green", "tab:purple", "tab:brown")


def _smooth(y: np.ndarray, width: int) -> np.ndarray:
    if width <= 1 or y.size < 2:
        return y
    width = min(width, y.size)
    kernel = np.ones(width) / width
    padded = np.concatenate([np.full(width - 1, y[0]), y])
    return np.convolve(padded, kernel, mode="valid")


def branch_label(plan: WorkflowPlan, branch: str) -> str:
    rates = fixed_rates(plan, branch)
    if rates is None:
        return {"learned": "learned taxes", "consumer_welfare": "learned, consumer welfare",
                ABLATION: "no curriculum"}.get(branch, branch)
    income, corporate = rates
    return f"fixed {income:.0%}" if income == corporate else f"fixed {income:.0%} income / {corporate:.0%} corporate"


def _branch_styles(plan: WorkflowPlan, branches: list[str]) -> dict[str, dict]:
    """Colour, line style and label per branch: learned ones solid and bright, fixed ones by a colour map and a
    cycle of dash patterns, so neighbouring rates differ in both."""
    import matplotlib

    fixed = [b for b in branches if fixed_rates(plan, b) is not None]
    cmap = matplotlib.colormaps["viridis"]
    styles = {"learned": {"color": "tab:blue", "lw": 1.8, "ls": "-"},
              "consumer_welfare": {"color": "tab:orange", "lw": 1.5, "ls": "-"},
              ABLATION: {"color": "tab:red", "lw": 1.3, "ls": "--"}}
    for i, (branch, ls) in enumerate(zip(fixed, itertools.cycle(LINE_STYLES))):
        styles[branch] = {"color": cmap(i / max(len(fixed) - 1, 1) * 0.9), "lw": 1.0, "ls": ls}
    return {b: {**styles.get(b, {"color": "k", "lw": 1.0, "ls": "-"}), "label": branch_label(plan, b)}
            for b in branches}


def _seed_mean(logs: list[dict[str, np.ndarray]], key: str) -> np.ndarray:
    with warnings.catch_warnings():  # episodes that no seed trained (a collapsed branch) stay NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(np.stack([log[key] for log in logs]), axis=0)


def training_curves(results: Results, summary: dict, path: Path) -> None:
    import matplotlib.pyplot as plt

    plan = results.plan
    economies = list(plan.economies)
    fig, axes = plt.subplots(len(economies), 3, figsize=(15, 3.8 * len(economies)), squeeze=False)
    bounds = [(stage.name, *results.stage_bounds[stage.name]) for stage in results.stages]
    prefix_end = bounds[len(plan.prefix_stages) - 1][2]
    for row, economy in enumerate(economies):
        branches = plan.evaluated_branches(economy)
        styles = _branch_styles(plan, branches)
        for branch in branches:
            logs = [results.training_log(economy, s, branch) for s in results.seeds(economy)]
            episodes = logs[0]["episode"]
            width = max(1, episodes.size // 40)
            # Smoothed over the whole history, so a branch starts where the shared prefix ends.
            own = episodes >= prefix_end - 1 if branch != ABLATION else np.ones_like(episodes, dtype=bool)
            for col, group in enumerate(GROUPS):
                series = _smooth(_seed_mean(logs, f"reward/{group}"), width)
                axes[row, col].plot(episodes[own], series[own], **styles[branch])
                if branch == "learned":
                    shared = ~own | (episodes == prefix_end - 1)
                    axes[row, col].plot(episodes[shared], series[shared], color="k", lw=2.0, label="shared prefix")
        seeds = results.seeds(economy)
        for col, group in enumerate(GROUPS):
            ax = axes[row, col]
            for name, lo, hi in bounds:
                ax.axvline(lo, color="k", lw=0.5, alpha=0.4)
                ax.text((lo + hi) / 2, 1.0, name, transform=ax.get_xaxis_transform(), ha="center", va="bottom",
                        fontsize=7)
            what = f"mean of {len(seeds)} seeds" if len(seeds) > 1 else f"seed {seeds[0]}"
            ax.set_title(f"{economy}: {group} reward ({what})", pad=14)
            ax.set_xlabel("episode")
        axes[row, 0].set_ylabel("per-agent episode return (smoothed)")
        axes[row, -1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.suptitle("Training curves; the branches continue the shared prefix stages")
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _bar(ax, x: float, per_seed: list[float], color: str, hatch: str | None, label: str | None,
         within: dict | None, scale: float) -> float:
    """One bar: the over-seed mean with its t-interval, every seed as a dot, the value written on top.
    With one seed the error bar is that seed's own interval (evaluation noise), as the title says. Values are
    drawn divided by `scale` (one constant, so the t-interval divides exactly) and written in their own unit;
    returns the drawn height."""
    stat = over_seeds(per_seed)
    lo, hi = stat["ci95"] if stat["seeds"] > 1 else (within["ci95"] if within else (np.nan, np.nan))
    mean = stat["mean"] / scale
    err = [[mean - lo / scale], [hi / scale - mean]] if finite(lo) and finite(hi) else None
    ax.bar(x, mean, width=0.7, color=color, hatch=hatch, edgecolor="k", lw=0.5, yerr=err, capsize=4, label=label)
    ax.plot([x] * len(per_seed), [v / scale for v in per_seed], ls="none", marker="o", ms=4, mfc="white", mec="k")
    ax.annotate(num(stat["mean"]), (x, mean), textcoords="offset points", xytext=(0, 3), ha="center", fontsize=7,
                bbox={"fc": "white", "ec": "none", "alpha": 0.8, "pad": 0.5})
    return mean


def _probe_look(probe: str) -> tuple[str, str | None, str]:
    if probe == POWER:
        return "tab:gray", "//", "power check (from an untrained network)"
    if probe.startswith(INDIVIDUAL):
        return "tab:purple", "..", "one agent alone"
    return "tab:blue", None, "type's best response (a learner)"


def _linear_threshold(heights: list[float]) -> float:
    """The symmetric-log axis is linear up to the decade of the smallest bar (kept within 1e-4..0.1 of the
    bound), so that every bar reaches past the linear band and none is a sliver beside a power check that is
    many times the bound."""
    nonzero = [abs(h) for h in heights if finite(h) and h != 0]
    smallest = min(nonzero, default=0.1)
    return float(10.0 ** np.clip(np.floor(np.log10(smallest)), -4, -1))


def _best_response_panel(ax, entry: dict, probes: list[str], seeds: list[str], title: str, group: str) -> None:
    """One type's probes in one economy, in units of the paper's check: a gain of 1 is the paper's bound times
    the type's trained reward (over seeds), so the bound is the line at 1 in every panel and the learners'
    small gaps and the power check's large gain share one symmetric-log axis."""
    trained = over_seeds([entry["per_seed"][s]["trained"]["mean"] for s in seeds])["mean"]
    tolerance = entry["bound"] * abs(trained) if finite(trained) and trained != 0 else 1.0
    seen, heights = set(), []
    for x, probe in enumerate(probes):
        gains = [entry["per_seed"][s]["probes"][probe]["gain"] for s in seeds]
        color, hatch, kind = _probe_look(probe)
        heights.append(_bar(ax, x, [g["mean"] for g in gains], color, hatch, None if kind in seen else kind,
                            gains[0] if len(seeds) == 1 else None, scale=tolerance))
        seen.add(kind)
    ax.set_yscale("symlog", linthresh=_linear_threshold(heights), linscale=0.5)
    ax.axhline(1.0, color="tab:red", ls="--", lw=1, label="the paper's bound x |trained reward| (1 on every axis)")
    ax.axhline(0, color="k", lw=0.6)
    ax.set_xticks(range(len(probes)), probes, fontsize=8)
    ax.set_xlabel(f"probe; 1 = {entry['bound']:.0%} x |trained reward| = {num(tolerance)} per agent", fontsize=8)
    ax.set_ylabel(f"{group} gain / paper bound (symmetric log)")
    what = f"{len(seeds)} seeds, t-intervals" if len(seeds) > 1 else f"seed {seeds[0]}, its own 95% interval"
    ax.set_title(f"{title}: {group} ({what})", fontsize=9)


def best_response(results: Results, summary: dict, path: Path) -> None:
    import matplotlib.pyplot as plt

    plan = results.plan
    groups = plan.best_response_types
    rows = [(e, b) for e in plan.economies for b in plan.best_response_branches]
    fig, axes = plt.subplots(max(len(rows), 1), max(len(groups), 1), squeeze=False,
                             figsize=(5.2 * max(len(groups), 1), 4.2 * max(len(rows), 1)))
    if not rows or not groups:
        axes[0, 0].text(0.5, 0.5, "no best responses in this profile", ha="center", va="center")
    for (economy, branch), line in zip(rows, axes):
        seeds = [str(s) for s in results.seeds(economy)]
        for ax, group in zip(line, groups):
            _best_response_panel(ax, summary["economies"][economy]["epsilon"][branch][group],
                                 plan.best_response_probes(group), seeds, f"{economy} ({branch})", group)
    legend = {}  # one legend for the figure, below the panels, so that no panel's bars are covered
    for ax in axes.flat:
        legend.update(zip(*reversed(ax.get_legend_handles_labels())))
    fig.suptitle("Best-response gains by probe, in units of the paper's bound; bars are labelled with the gain in "
                 "episode return per agent; dots: seeds")
    fig.legend(list(legend.values()), list(legend), loc="lower center", ncol=max(len(legend), 1), fontsize=8)
    fig.tight_layout(rect=(0, 0.05, 1, 0.97))
    fig.savefig(path, dpi=110)
    plt.close(fig)


WELFARE_PANELS = (("welfare_total", "total welfare", "learned"),
                  ("welfare_consumer_only", "consumer-only welfare", "consumer_welfare"),
                  ("consumer_reward", "consumer reward", "learned"),
                  ("firm_reward", "firm reward", "learned"))


def _points_with_interval(ax, x: list[float], stats: list[dict], seed_x: list[list[float]] | None = None,
                          **style) -> None:
    """Every seed's value (hollow, at its own x where given) and the over-seed mean with its t-interval where
    it exists."""
    means = np.array([s["over_seeds"]["mean"] for s in stats])
    lo = np.array([s["over_seeds"]["ci95"][0] for s in stats], dtype=float)
    hi = np.array([s["over_seeds"]["ci95"][1] for s in stats], dtype=float)
    err = np.nan_to_num(np.vstack([means - lo, hi - means])) if np.isfinite(lo).all() else None
    ax.errorbar(x, means, yerr=err, capsize=3, **style)
    for i, s in enumerate(stats):
        values = [v["mean"] for v in s["per_seed"].values()]
        xs = seed_x[i] if seed_x is not None else [x[i]] * len(values)
        ax.plot(xs, values, ls="none", marker=style.get("marker", "o"), mfc="none", ms=7, color=style.get("color"),
                alpha=0.6)


def welfare_vs_tax(results: Results, summary: dict, path: Path) -> None:
    import matplotlib.pyplot as plt

    plan = results.plan
    economies = list(plan.economies)
    fig, axes = plt.subplots(len(economies), 4, figsize=(18, 3.9 * len(economies)), squeeze=False)
    for row, (economy, color) in enumerate(zip(economies, itertools.cycle(ECONOMY_COLORS))):
        outs = summary["economies"][economy]["outcomes"]
        equal = sorted(results.equal_rate_branches(economy), key=lambda b: fixed_rates(plan, b))
        seeds = results.seeds(economy)
        for ax, (name, label, policy) in zip(axes[row], WELFARE_PANELS):
            if equal:
                _points_with_interval(ax, [100 * fixed_rates(plan, b)[0] for b in equal],
                                      [outs[b][name] for b in equal], color=color, marker="o", label="fixed taxes")
            policy = policy if policy in outs else "learned"
            taxes = outs[policy]["income_tax_rate"]
            _points_with_interval(ax, [100 * taxes["over_seeds"]["mean"]], [outs[policy][name]],
                                  [[100 * t["mean"] for t in taxes["per_seed"].values()]], color="k", marker="*",
                                  ms=12, ls="none", label=f"{branch_label(plan, policy)} (at its mean income tax)")
            ax.set_xlabel("income = corporate tax rate (%)")
            ax.set_ylabel(label)
            what = f"{len(seeds)} seeds" if len(seeds) > 1 else f"seed {seeds[0]}: no over-seed interval"
            ax.set_title(f"{economy}: {label} ({what})", fontsize=9)
            ax.legend(fontsize=7)
    fig.suptitle("Equal fixed tax rates vs the learned governments; hollow: each seed, filled: mean over seeds "
                 "with Student-t 95% intervals")
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _grid_matrix(grid: dict, name: str) -> tuple[np.ndarray, list[list[str]]]:
    """(corporate x income) over-seed means of one welfare and each cell's text (value, collapsed seeds)."""
    incomes, corporates = grid["income_rates"], grid["corporate_rates"]
    values = np.full((len(corporates), len(incomes)), np.nan)
    text = [["" for _ in incomes] for _ in corporates]
    for point in grid["points"]:
        i, j = corporates.index(point["corporate"]), incomes.index(point["income"])
        values[i, j] = point[name]["mean"]
        collapsed = f"\ncollapsed {point['collapsed_seeds']}/{point['seeds']}" if point["collapsed_seeds"] else ""
        text[i][j] = num(point[name]["mean"]) + collapsed
    return values, text


def _grid_panel(fig, ax, data: dict, name: str, label: str, plan: WorkflowPlan) -> None:
    """One welfare on one economy's grid of fixed taxes, the learned governments' mean rates and caps marked."""
    grid = data["tax_grid"]
    incomes, corporates = grid["income_rates"], grid["corporate_rates"]
    if not grid["points"]:
        ax.text(0.5, 0.5, "no fixed taxes in this economy", ha="center", va="center", transform=ax.transAxes)
        return
    values, text = _grid_matrix(grid, name)
    image = ax.imshow(values, origin="lower", cmap="viridis", aspect="auto")
    fig.colorbar(image, ax=ax, label=f"{label}, mean over seeds")
    for (i, j), cell in np.ndenumerate(np.array(text, dtype=object)):  # at the cell's top: markers sit mid-cell
        ax.text(j, i + 0.45, cell, ha="center", va="top", fontsize=7, color="w", path_effects=_outline())
    for policy, marker in (("learned", "*"), ("consumer_welfare", "^")):
        rates = data["learned_tax_rates"].get(policy)
        if rates is None:
            continue
        x = np.interp(rates["income"]["over_seeds"]["mean"], incomes, range(len(incomes)))
        y = np.interp(rates["corporate"]["over_seeds"]["mean"], corporates, range(len(corporates)))
        ax.plot(x, y, marker=marker, ms=14, mfc="tab:red", mec="w", ls="none", zorder=5,
                label=f"{branch_label(plan, policy)}: mean rates")
        cap = (data["welfare"].get(policy) or {}).get("within_cap")
        if cap is not None:  # the rates above this line are out of the government's reach
            ax.axhline(np.interp(cap["max_corporate_tax"], corporates, range(len(corporates))), color="tab:red",
                       ls="--", lw=1.2, label=f"{branch_label(plan, policy)}: corporate-rate cap")
    ax.set_xticks(range(len(incomes)), [f"{r:.0%}" for r in incomes])
    ax.set_yticks(range(len(corporates)), [f"{r:.0%}" for r in corporates])
    ax.set_xlabel("income tax rate")
    ax.set_ylabel("corporate tax rate")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, frameon=False)


def tax_grid(results: Results, summary: dict, path: Path) -> None:
    import matplotlib.pyplot as plt

    economies = list(results.plan.economies)
    panels = (("welfare_total", "total welfare"), ("welfare_consumer_only", "consumer-only welfare"))
    fig, axes = plt.subplots(len(economies), 2, figsize=(12, 5.2 * len(economies)), squeeze=False)
    for row, economy in enumerate(economies):
        for ax, (name, label) in zip(axes[row], panels):
            _grid_panel(fig, ax, summary["economies"][economy], name, label, results.plan)
            ax.set_title(f"{economy}: {label} at each fixed tax", fontsize=9)
    fig.suptitle("Fixed taxes on the income x corporate grid; blank: not run")
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _outline() -> list:
    from matplotlib import patheffects

    return [patheffects.withStroke(linewidth=2, foreground="k")]


def _trajectory(results: Results) -> tuple[str, int, dict]:
    economy = "open" if "open" in results.plan.economies else next(iter(results.plan.economies))
    seed = results.seeds(economy)[0]
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
        "tax_grid": tax_grid, "rollout_firms": rollout_firms, "rollout_consumers": rollout_consumers}
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
