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
    files = []
    for economy, seed in PLAN.pipelines():
        pipe = PIPE.format(economy=economy, seed=seed)
        for branch in PLAN.evaluated_branches(economy):
            files.append(f"{pipe}/{branch}/evaluation.json")
        for stage in PLAN.stages:
            for branch in PLAN.branch_of_stage(stage, economy):
                files.append(f"{pipe}/{branch}/{stage}.metrics.csv")
        if PLAN.ablation:
            files.append(f"{pipe}/{ABLATION}/{ABLATION}.metrics.csv")
        for branch in PLAN.best_response_branches:
            for group in PLAN.best_response_types:
                for probe in PLAN.best_response_probes(group):
                    files.append(f"{pipe}/{branch}/best_response/{group}/{probe}/best_response.json")
                    files.append(f"{pipe}/{branch}/best_response/{group}/{probe}/curve.csv")
    return files
