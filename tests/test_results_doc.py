"""The numbers README.md and docs/results.md quote are the committed summary.json's, so they cannot drift.

Comparisons over seeds are recomputed here by hand from each seed's mean in summary.json: the paired
difference of the two seeds, its mean and the Student-t interval with one degree of freedom
(t_0.975,1 = 12.706), written as the documents write them: +1,187 [-10,345, 12,720].
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SUMMARY = json.loads((ROOT / "results" / "default" / "summary.json").read_text())
README = (ROOT / "README.md").read_text()
RESULTS = (ROOT / "docs" / "results.md").read_text()
T_975_1 = 12.706204736174698  # Student t, 97.5% quantile, one degree of freedom (two seeds)


def seed_means(economy: str, *path: str) -> list[float]:
    """One value per committed seed, read along `path` under economies.<economy>.seeds.<seed>."""
    values = []
    for seed in SUMMARY["seeds"]:
        node = SUMMARY["economies"][economy]["seeds"][str(seed)]
        for key in path:
            node = node[key]
        values.append(node["mean"] if isinstance(node, dict) else node)
    return values


def paired_over_seeds(a: list[float], b: list[float]) -> str:
    """The documents' form of a paired difference a - b over two seeds with its 95% t-interval."""
    differences = [x - y for x, y in zip(a, b)]
    assert len(differences) == 2
    mean = sum(differences) / 2
    half = T_975_1 * abs(differences[0] - differences[1]) / 2  # s / sqrt(2) for n = 2
    return f"{mean:+,.0f} [{mean - half:,.0f}, {mean + half:,.0f}]"


OVER_SEEDS = {
    "learned - fixed 20%, total welfare": (("open", "welfare", "learned"), ("open", "welfare", "fixed_tax", "0.2")),
    "learned - fixed 0%, total welfare": (("open", "welfare", "learned"), ("open", "welfare", "fixed_tax", "0")),
    "consumer-welfare government - best fixed, consumer welfare": (
        ("open", "welfare_consumer_only", "consumer_welfare"), ("open", "welfare_consumer_only", "best_fixed")),
    "no curriculum - curriculum, open": (("open", "ablation", "nocurriculum", "welfare_total"),
                                        ("open", "ablation", "curriculum", "welfare_total")),
    "no curriculum - curriculum, closed": (("closed", "ablation", "nocurriculum", "welfare_total"),
                                          ("closed", "ablation", "curriculum", "welfare_total")),
}


def test_the_hand_interval_matches_a_hand_example():
    # differences 1 and 3: mean 2, s = sqrt(2), s / sqrt(2) = 1, so 2 +- 12.706
    assert paired_over_seeds([2.0, 5.0], [1.0, 2.0]) == "+2 [-11, 15]"


@pytest.mark.parametrize("claim", sorted(OVER_SEEDS))
def test_results_md_quotes_every_over_seed_comparison_as_summary_json_gives_it(claim):
    (economy, *a), (_, *b) = OVER_SEEDS[claim]
    quoted = paired_over_seeds(seed_means(economy, *a), seed_means(economy, *b))
    assert quoted in RESULTS, f"{claim}: {quoted}"


@pytest.mark.parametrize("claim", ["learned - fixed 20%, total welfare", "learned - fixed 0%, total welfare",
                                   "consumer-welfare government - best fixed, consumer welfare",
                                   "no curriculum - curriculum, closed"])
def test_readme_quotes_the_same_over_seed_comparisons(claim):
    (economy, *a), (_, *b) = OVER_SEEDS[claim]
    assert paired_over_seeds(seed_means(economy, *a), seed_means(economy, *b)) in README


def test_a_difference_whose_interval_holds_zero_is_called_indistinguishable():
    """Only the consumer-welfare government's difference excludes zero; the text says so of each."""
    for claim, ((economy, *a), (_, *b)) in OVER_SEEDS.items():
        quoted = paired_over_seeds(seed_means(economy, *a), seed_means(economy, *b))
        low, high = (float(x.replace(",", "")) for x in quoted.split("[")[1].rstrip("]").split(", "))
        after = RESULTS[RESULTS.index(quoted) + len(quoted):][:40]
        if low <= 0 <= high:
            assert "indistinguishable" in after or "indistinguishable" in RESULTS[RESULTS.index(quoted) - 200:
                                                                                 RESULTS.index(quoted)], claim
        else:
            assert "indistinguishable" not in after, claim
    assert "intervals disjoint" not in README


def test_quoted_single_numbers_are_summary_jsons():
    ablation = seed_means("open", "ablation", "nocurriculum", "welfare_total")
    assert f"total welfare {ablation[0]:,.0f} and {ablation[1]:,.0f}" in RESULTS
    wages = seed_means("open", "outcomes", "fixed20", "wage")
    assert f"highest wages ({wages[0]:.1f} and {wages[1]:.1f})" in RESULTS
    seed1 = SUMMARY["economies"]["open"]["seeds"]["1"]["epsilon"]["government"]
    assert f"{100 * seed1['relative_vs_untrained']:.2f}% / {100 * seed1['relative']:.3f}% | < 1% |" in RESULTS
