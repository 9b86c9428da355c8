"""Best-response gaps (the paper's Table 3) from every probe: learners, the power check, one agent alone.

For each type and seed, the gap is the largest gain any learner finds (a search is a lower bound on the
true gap, so the strongest one is the best bound), and it is set against the type's training gain as
the best-response rule measured it: trained minus freshly initialized network of the type, both at the
best-response plan (full labour disutility). The power check asks whether the same search, started
from an untrained network, finds a gain of the size the paper's bound allows; if not, a small gap says
nothing. Over seeds, the paper reports the worst seed; the mean with its t-interval sits beside it.
"""

from __future__ import annotations

from typing import Any

from ...orchestration.plan import INDIVIDUAL, POWER
from .results import Results
from .stats import NAN, excludes_zero, finite, interval, over_seeds

# The paper's Table 3: worst-case relative best-response gain over 10 seeds at the end of training.
PAPER_EPSILON_BOUND = {"consumer": 0.03, "firm": 0.10, "government": 0.01}

HAS_POWER = "has power"
NO_POWER = "no power: the gap above is uninformative"


def _order(stat: dict) -> float:
    """A mean to take the largest of, undefined ones last."""
    return stat["mean"] if finite(stat["mean"]) else float("-inf")


def probe_entry(br: dict) -> dict:
    """What the report keeps of one best_response.json."""
    return {
        "learner": br["learner"],
        "start": br["start"],
        "agent": br["agent"],
        "gain": interval(br["gain"]),
        "trained": interval(br["trained"]),
        "training_gain_vs_untrained": interval(br["training_gain_vs_untrained"]),
        "selected_episode": br.get("selected_episode"),
        "curve_end_change": br.get("curve_end_change", NAN),
    }


def relative_gap(gap: float, training: dict) -> tuple[float, str | None]:
    """gap / training gain, defined only for a positive training gain whose interval excludes 0."""
    separated = excludes_zero(training["ci95"])
    if not finite(gap) or not finite(training["mean"]):
        return NAN, "the gap or the training gain is undefined"
    if training["mean"] <= 0:
        return NAN, "the training gain is not positive: the trained network does no better than an untrained one"
    if separated is None:
        return NAN, "the training gain's interval is undefined"
    if not separated:
        return NAN, "the training gain's 95% interval includes 0"
    return gap / training["mean"], None


def power_check(probe: dict | None, group: str) -> dict | None:
    """Whether the search from an untrained network finds a significant gain of at least bound x |trained|."""
    if probe is None:
        return None
    required = PAPER_EPSILON_BOUND[group] * abs(probe["trained"]["mean"])
    gain = probe["gain"]
    found = bool(excludes_zero(gain["ci95"])) and gain["mean"] >= required and gain["mean"] > 0
    return {"gain": gain, "required": required, "verdict": HAS_POWER if found else NO_POWER}


def individual(probes: dict[str, dict], learners: list[str]) -> dict | None:
    """One agent deviating alone: the largest gain over the learners, relative to |its trained reward|."""
    names = [f"{INDIVIDUAL}{name}" for name in learners if f"{INDIVIDUAL}{name}" in probes]
    if not names:
        return None
    probe = probes[max(names, key=lambda n: _order(probes[n]["gain"]))]
    trained = probe["trained"]["mean"]
    return {"agent": probe["agent"], "learner": probe["learner"], "gain": probe["gain"], "trained": probe["trained"],
            "relative": probe["gain"]["mean"] / abs(trained) if finite(trained) and trained != 0 else NAN}


def seed_entry(results: Results, economy: str, seed: int, branch: str, group: str) -> dict:
    """One type's probes at one seed, its gap (largest learner gain), relative gap, power and individual deviation."""
    plan = results.plan
    probes = {p: probe_entry(results.best_responses[economy, seed, branch, group, p])
              for p in plan.best_response_probes(group)}
    learners = [name for name in plan.best_response_learners if name in probes]
    best = max(learners, key=lambda name: _order(probes[name]["gain"]))
    training = probes[best]["training_gain_vs_untrained"]
    relative, why = relative_gap(probes[best]["gain"]["mean"], training)
    return {
        "probes": probes,
        "gap": probes[best]["gain"],
        "gap_learner": best,
        "training_gain": training,
        "trained": probes[best]["trained"],
        "relative": relative,
        "relative_undefined": why,
        "power": power_check(probes.get(POWER), group),
        "individual": individual(probes, plan.best_response_learners),
    }


def over_seed_entry(per_seed: dict[str, dict], group: str) -> dict:
    """t-intervals of the gaps over seeds, the worst seed (the paper's Table 3) and the power checks' count."""
    relative = {s: e["relative"] for s, e in per_seed.items() if finite(e["relative"])}
    worst = max(relative, key=relative.get) if relative else None
    worst_absolute = max(per_seed, key=lambda s: _order(per_seed[s]["gap"]))
    powers = [e["power"] for e in per_seed.values() if e["power"] is not None]
    deviations = [e["individual"] for e in per_seed.values() if e["individual"] is not None]
    return {
        "gap": over_seeds([e["gap"]["mean"] for e in per_seed.values()]),
        "relative": over_seeds(list(relative.values())),
        "relative_defined_seeds": len(relative),
        "seeds": len(per_seed),
        "worst_seed": worst,
        "worst_relative": relative[worst] if worst is not None else NAN,
        # Below the bound only when every seed's relative gap is defined: an undefined one could be the worst.
        "below_bound": None if worst is None or len(relative) < len(per_seed)
        else relative[worst] < PAPER_EPSILON_BOUND[group],
        "worst_seed_absolute": worst_absolute,
        "worst_gap": per_seed[worst_absolute]["gap"]["mean"],
        "power_checked_seeds": len(powers),
        "seeds_with_power": sum(p["verdict"] == HAS_POWER for p in powers),
        "individual": {"gain": over_seeds([d["gain"]["mean"] for d in deviations]),
                       "relative": over_seeds([d["relative"] for d in deviations])} if deviations else None,
    }


def epsilon(results: Results, economy: str) -> dict[str, Any]:
    """Branch -> type -> {bound, learners, per_seed, over_seeds}."""
    plan = results.plan
    out: dict[str, Any] = {}
    for branch in plan.best_response_branches:
        out[branch] = {}
        for group in plan.best_response_types:
            per_seed = {str(s): seed_entry(results, economy, s, branch, group) for s in results.seeds(economy)}
            out[branch][group] = {"bound": PAPER_EPSILON_BOUND[group], "learners": list(plan.best_response_learners),
                                  "per_seed": per_seed, "over_seeds": over_seed_entry(per_seed, group)}
    return out
