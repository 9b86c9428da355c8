"""Result trees written by hand, so the report's multi-seed paths are tested without training anything.

`write_tree` writes every file the report reads (evaluation.json per branch, best_response.json and
curve.csv per probe, per-stage metrics CSVs) for a WorkflowPlan, with the numbers that matter chosen
by the caller: each branch's welfare and tax rates per seed, and each probe's gain and training gain.
Everything else is filled with plausible constants. `hand_report` builds the report of one such
profile, whose numbers tests/test_report.py and tests/test_report_text.py work out by hand.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline.orchestration.plan import ABLATION, PREFIX, WorkflowPlan

EXPERIMENT = {
    "economy": {"n_consumers": 4, "n_firms": 2},
    "policy": {"hidden_sizes": [8]},
    "training": {"num_envs": 2},
    "curriculum": {
        "stages": [{"name": "consumers", "episodes": 4, "train": ["consumer"]},
                   {"name": "government", "episodes": 4, "train": ["consumer", "firm", "government"]}],
        "firm_mask": None, "tax_mask": None, "labor_disutility_decay": None,
    },
    "best_response": {"episodes": 4, "eval_episodes": 2, "window": 2,
                      "learners": {"pg": {}, "ppo": {"algorithm": "ppo"}}},
    "evaluation": {"episodes": 2, "num_envs": 2},
    "tracking": {"enabled": False},
}


def plan_of(seeds: list[int], **config) -> WorkflowPlan:
    """Two economies (open, closed) on a tiny experiment; `config` adds or replaces workflow keys."""
    base = {"profile": "hand", "seeds": seeds, "economies": {"open": {"open_economy": True},
                                                             "closed": {"open_economy": False}},
            "prefix_stages": 1, "fixed_taxes": [0.2, 0.4], "experiment": EXPERIMENT,
            "best_response_power": True, "best_response_individual": ["consumer"]}
    return WorkflowPlan({**base, **config})


def stat(mean: float, half: float = 1.0, n: int = 4) -> dict:
    return {"mean": float(mean), "ci95": [mean - half, mean + half], "n": n}


def evaluation(welfare: float, consumer_welfare: float, income: float, corporate: float,
               collapsed_at: int | None = None) -> dict:
    """An evaluation.json with the given welfare and tax rates; the rest constant."""
    values = {"welfare/total": welfare, "welfare/consumer_only": consumer_welfare, "reward/consumer": 10.0,
              "reward/firm": 1000.0, "reward/government": welfare, "economy/income_tax_rate": income,
              "economy/corporate_tax_rate": corporate, "economy/price": 1000.0, "economy/wage": 20.0,
              "economy/hours": 5.0, "economy/employed_share": 0.9, "economy/consumption": 2.0,
              "economy/production": 10.0, "economy/sales": 6.0, "economy/exports": 4.0,
              "economy/domestic_share": 0.6}
    firms = {k: [[1.0, 2.0], [1.5, 2.5]] for k in ("price", "wage", "hours", "workers", "production", "sales",
                                                  "exports", "profit", "reward", "consumption")}
    steps = 3
    trajectory = {
        "firm": {k: [[1.0, 2.0]] * steps for k in ("price", "wage", "labor", "production", "sales", "exports")},
        "consumer": {k: [[1.0] * 4] * steps for k in ("hours", "consumption", "budget")},
        "government": {"income_tax_rate": [income] * steps, "corporate_tax_rate": [corporate] * steps},
    }
    return {"metrics": {k: stat(v) for k, v in values.items()}, "firm_samples": firms, "trajectory": trajectory,
            "consumer_response": None, "collapsed_at": collapsed_at}


def best_response(probe: dict, learner: str, start: str, agent: int | None) -> dict:
    """A best_response.json from `probe`: gain (a number, or a {mean, ci95, n}), training (the training gain
    vs untrained, {mean, ci95, n}) and trained (the trained reward)."""
    gain = probe.get("gain", 1.0)
    gain = gain if isinstance(gain, dict) else stat(gain, 0.5)
    trained = probe.get("trained", 200.0)
    return {"learner": learner, "start": start, "agent": agent, "gain": gain, "trained": stat(trained),
            "before": stat(trained), "after": stat(trained + gain["mean"]),
            "training_gain_vs_untrained": probe.get("training", stat(100.0, 5.0)), "selected_episode": 2,
            "curve_end_change": 0.0}


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _write_metrics(path: Path, first: int, last: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["episode", "reward/consumer", "reward/firm", "reward/government"])
        writer.writerows([e, 1.0 + e, 100.0 + e, 50.0] for e in range(first, last))


Welfare = Callable[[str, int, str], tuple[float, float]]
Probe = Callable[[str, int, str, str], dict]


def default_welfare(economy: str, seed: int, branch: str) -> tuple[float, float]:
    """(total, consumer-only) welfare of a branch at a seed."""
    return 100.0 + 10 * seed + len(branch), 50.0 + seed


def default_probe(economy: str, seed: int, group: str, probe: str) -> dict:
    return {"gain": 1.0 + seed}


def write_tree(root: Path, plan: WorkflowPlan, welfare: Welfare = default_welfare, probe_of: Probe = default_probe,
               rates: Callable[[str, int, str], tuple[float, float]] | None = None,
               collapsed: set[tuple[str, int, str]] = frozenset()) -> Path:
    """Every file the report reads, under root/<economy>/seed<seed>/; returns root."""
    stages = [(s["name"], s["episodes"]) for s in plan.experiment["curriculum"]["stages"]]
    total = sum(e for _, e in stages)
    for economy, seed in plan.pipelines():
        pipe = root / economy / f"seed{seed}"
        for branch in plan.evaluated_branches(economy):
            fixed = plan.branches[branch].fixed_rates if branch in plan.branches else None
            income, corporate = fixed or (rates(economy, seed, branch) if rates else (0.1, 0.3))
            stopped = (economy, seed, branch) in collapsed
            data = evaluation(*welfare(economy, seed, branch), income, corporate, 5 if stopped else None)
            _write(pipe / branch / "evaluation.json", json.dumps(data))
        first = 0
        for i, (stage, episodes) in enumerate(stages):
            owners = [PREFIX] if i < len(plan.prefix_stages) else plan.branches_of(economy)
            for owner in owners:
                # a collapsed branch stops 2 episodes into its first stage; later stages hold no rows
                rows = episodes
                if (economy, seed, owner) in collapsed:
                    rows = 2 if i == len(plan.prefix_stages) else 0
                _write_metrics(pipe / owner / f"{stage}.metrics.csv", first, first + rows)
            first += episodes
        if plan.ablation:
            _write_metrics(pipe / ABLATION / f"{ABLATION}.metrics.csv", 0, total)
        for branch in plan.best_response_branches:
            for group in plan.best_response_types:
                for probe in plan.best_response_probes(group):
                    learner = probe.removeprefix("agent_") if probe != "power" else plan.best_response_learners[0]
                    agent = plan.deviating_agent(economy, seed, group) if probe.startswith("agent_") else None
                    start = "untrained" if probe == "power" else "trained"
                    out = pipe / branch / "best_response" / group / probe
                    _write(out / "best_response.json",
                           json.dumps(best_response(probe_of(economy, seed, group, probe), learner, start, agent)))
                    _write(out / "curve.csv", f"episode,reward/{group}\n0,1.0\n1,2.0\n")
    return root


# ---------------------------------------------------------------------------------------- the hand-written profile
# Three seeds of an open economy with one point of an income x corporate grid, one seed of a closed economy.
HAND_WORKFLOW = {
    "profile": "hand", "seeds": [0, 1, 2], "economy_seeds": {"closed": [3]},
    "economies": {"open": {"open_economy": True}, "closed": {"open_economy": False}},
    "prefix_stages": 1, "fixed_taxes": [0.2, 0.4],
    "tax_grid": {"income": [0.0], "corporate": [0.4], "economies": ["open"]},
    "experiment": EXPERIMENT, "best_response_power": True, "best_response_individual": ["consumer"],
}

# Total welfare per branch: open = base + seed, except fixed20, which wins seed 0 alone; the closed economy's
# numbers are a hundredth of the open one's, and there the ablation beats the curriculum.
OPEN_TOTAL = {"learned": 130.0, "consumer_welfare": 90.0, "fixed40": 120.0, "fixed00c40": 150.0, "nocurriculum": 125.0}
FIXED20_OPEN = (200.0, 50.0, 50.0)
CLOSED_TOTAL = {"learned": 2.0, "consumer_welfare": 1.0, "fixed20": 3.0, "fixed40": 0.5, "nocurriculum": 5.0}


def hand_welfare(economy: str, seed: int, branch: str) -> tuple[float, float]:
    consumer = {"consumer_welfare": 60.0, "fixed00c40": 45.0}.get(branch, 40.0) + seed
    if economy == "closed":
        return CLOSED_TOTAL[branch], consumer / 100
    total = FIXED20_OPEN[seed] if branch == "fixed20" else OPEN_TOTAL[branch] + seed
    return total, consumer


def hand_rates(economy: str, seed: int, branch: str) -> tuple[float, float]:
    return (0.1 * seed, 0.3) if branch == "learned" else (0.05, 0.5)


# Consumer probes in the open economy, per seed: the learners' gains, the power check, the deviating agent, and
# the training gain vs untrained (seed 1: its interval includes 0; seed 2: negative).
HAND_CONSUMER = {
    0: {"pg": 1.0, "ppo": 3.0, "power": stat(7.0, 0.5), "agent_pg": 2.0, "training": stat(100.0, 10.0)},
    1: {"pg": 5.0, "ppo": 2.0, "power": stat(5.0, 0.5), "agent_pg": 1.0, "training": stat(5.0, 6.0)},
    2: {"pg": 2.0, "ppo": 2.5, "power": stat(7.0, 7.5), "agent_pg": 3.0, "training": stat(-3.0, 1.0)},
}


def hand_probe(economy: str, seed: int, group: str, probe: str) -> dict:
    if economy == "closed":  # tiny gains, and a bound (3-10% of 1,000) far above them
        gain = 0.01 * (1 + len(probe))
        return {"gain": stat(gain, 0.1 * gain), "trained": 1000.0}
    if group == "consumer":
        return {"gain": HAND_CONSUMER[seed][probe], "training": HAND_CONSUMER[seed]["training"]}
    return {"gain": 1000.0 + 10 * seed}



T975_2 = 4.302653  # Student t(0.975) with 2 degrees of freedom
HALF_SD1 = T975_2 / math.sqrt(3)  # half-width of the t-interval of three values with standard deviation 1


def hand_report(root: Path) -> dict:
    """The report of the hand-written profile under root/results, with every figure it drew kept (figure
    objects by name) for the tests to read the drawn artists."""
    import matplotlib.figure
    import yaml

    from pipeline.analysis.report.cli import make_report

    results = root / "results"
    config = root / "workflow.yaml"
    config.write_text(yaml.safe_dump(HAND_WORKFLOW, sort_keys=False))
    write_tree(results, WorkflowPlan(HAND_WORKFLOW), hand_welfare, hand_probe, hand_rates,
               collapsed={("open", 1, "fixed00c40")})
    (results / "machine.json").write_text(json.dumps({"cpu_model": "Hand CPU", "native_bf16": True,
                                                      "train_throughput_s_per_iteration": 0.25, "threads": 2}))
    drawn = {}
    save = matplotlib.figure.Figure.savefig

    def keep(fig, path, *args, **kwargs):
        drawn[path.stem] = fig
        return save(fig, path, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(matplotlib.figure.Figure, "savefig", keep)
        summary = make_report(results, config, root / "logs", track=False)
    return {"root": results, "summary": summary, "markdown": (results / "summary.md").read_text(), "figures": drawn}


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """The hand-written profile's report, built once per test module that imports this fixture."""
    return hand_report(tmp_path_factory.mktemp("hand"))
