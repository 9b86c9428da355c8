# Input functions shared by the rules (kept apart from the rules themselves).

from pathlib import Path

FIGURES = ["training_curves", "best_response", "welfare_vs_tax", "tax_grid", "rollout_firms", "rollout_consumers"]


def pipe_dir(w):
    return PIPE.format(economy=w.economy, seed=w.seed)


def final_checkpoint(w):
    """The checkpoint a branch's evaluation reads: its last stage, or the ablation's single stage."""
    if w.branch == ABLATION:
        return f"{pipe_dir(w)}/{ABLATION}/{ABLATION}.pt"
    return f"{pipe_dir(w)}/{w.branch}/{PLAN.final_stage()}.pt"


def evaluation_config(w):
    kind = "ablation_evaluate" if w.branch == ABLATION else "evaluate"
    return f"{pipe_dir(w)}/config/{kind}.yaml"


def previous_checkpoint(stage):
    """Stage k starts from stage k-1 of the same branch, or of the shared prefix."""
    previous = PLAN.previous_stage(stage)

    def inputs(w):
        if previous is None:
            return []
        branch = PREFIX if previous in PLAN.prefix_stages else w.branch
        return [f"{pipe_dir(w)}/{branch}/{previous}.pt"]

    return inputs


def variant_flags(w):
    return PLAN.branches[w.branch].cli_flags() if w.branch in PLAN.branches else ""


def report_inputs(w):
    """What the report reads: each pipeline's results, from its stored copy where one stands in for it."""
    files = []
    for economy, seed in PLAN.pipelines():
        if (economy, seed) in STORED:
            pipe = str(stored_dir(R, economy, seed))
        else:
            pipe = PIPE.format(economy=economy, seed=seed)
        files += [f"{pipe}/{name}" for name in PLAN.result_files(economy)]
    return files
