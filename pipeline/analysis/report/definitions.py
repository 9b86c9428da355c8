"""One sentence per statistic of the report, written into summary.json and printed in summary.md.

A number without its definition invites the wrong reading (an interval of evaluation noise read as
an interval over training runs, a relative gap read against the wrong training gain); the text lives
beside the code that computes the numbers so the two change together.
"""

from __future__ import annotations

from .epsilon import HAS_POWER, NO_POWER
from .results import Results
from .stats import HIGHER, INDISTINGUISHABLE, LOWER, ONE_SEED
from .welfare import SELECTION


def definitions(results: Results) -> dict[str, str]:
    plan = results.plan
    learners = ", ".join(plan.best_response_learners)
    return {
        "welfare": "total = sum of consumer episode utilities + firm_welfare_weight x sum of firm episode profits; "
                   "consumer_only = sum of consumer episode utilities; one sample per evaluated economy-episode.",
        "per_seed": "the mean over the evaluated economy-episodes of one seed's trained policy, with its 95% "
                    "interval over those economy-episodes: evaluation noise of that one policy, not training "
                    "randomness.",
        "over_seeds": "the mean of the per-seed means with a Student-t 95% interval from their spread (seeds - 1 "
                      "degrees of freedom) and their standard deviation; with one seed no over-seed interval exists.",
        "paired": "a policy against a baseline trained from the same seed (the same shared prefix): per-seed "
                  "difference and ratio, and over seeds the mean difference with its Student-t interval; the "
                  f"verdict is '{HIGHER}' or '{LOWER}' only when that interval excludes 0, else "
                  f"'{INDISTINGUISHABLE}', and '{ONE_SEED}' with a single seed.",
        "best_fixed": f"{SELECTION}; the equal-rate comparison takes the profile's fixed_taxes (income = corporate "
                      "rate, the paper's design), the fair one every fixed tax the economy ran, the income x "
                      "corporate grid included; a government with a corporate-rate cap (within_cap) is also compared "
                      "with the best fixed tax inside its cap, since it cannot set the rates above it.",
        "collapsed": "a fixed-tax branch whose firms produced almost nothing for a run of episodes stopped training "
                     "early; its evaluation still counts, and the tax grid says at how many seeds that happened.",
        "gap": f"a type's best-response gap at one seed is the largest gain over the learner probes ({learners}); a "
               "gain is the type's reward after minus before the search, both measured on the same evaluation "
               "episodes (common random numbers), with a 95% interval of the paired differences. 'After' is the "
               "policy the search kept: every best_response.select_every episodes it scores the policy on "
               "best_response.select_episodes episodes of its own random numbers and keeps the best score seen, "
               "the starting policy included. A policy can win that selection by noise and then measure below the "
               "start, so a gap whose interval includes 0 or lies below it means the search found no deviation it "
               "could tell from the start; over seeds, the figure to quote as epsilon is the upper end of the "
               "interval, or the worst seed.",
        "relative_gap": "gap / training gain, where the training gain is the type's reward with its trained network "
                        "minus with a freshly initialized one, both at the best-response plan (full labour "
                        "disutility); defined only when that training gain is positive and its interval excludes 0. "
                        "Over seeds: a t-interval over the seeds where it is defined, and the worst seed, which is "
                        "what the paper's Table 3 reports.",
        "power": "the same search started from an untrained network of the type against the trained others; "
                 f"'{HAS_POWER}' when its gain's interval excludes 0 and the gain is at least the paper's bound for "
                 f"the type times |trained reward|, else '{NO_POWER}'.",
        "individual": "one agent of the type (the seed's agent on the golden-ratio sequence, "
                      "WorkflowPlan.deviating_agent) deviates alone with its own copy of the network: its gain "
                      "in its own episode return, relative to |its trained return|, with a t-interval over seeds.",
        "tax_rates": "a learned government's average income and corporate tax rates over the steps its agents chose.",
        "wall_time_s.dag": "latest job end minus earliest job start over the benchmarked jobs (training, "
                           "evaluation, best response); jobs_sum adds their wall times.",
        "pipelines": "per pipeline, where its numbers come from: 'this run', or 'archive' (a stored copy, "
                     "pipeline.orchestration.archive) with the commit, machine record and job times of the run "
                     "that made it; jobs.jobs_sum adds the wall times of the pipeline's jobs.",
        "machine": "the machine record the workflow wrote beside the results (CPU, native bf16, seconds per "
                   "training iteration, threads), null where it wrote none.",
    }
