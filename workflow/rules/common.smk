# Resolved configuration files. Each kind holds only the sections its rules depend on, and is
# rewritten only when its content changes, so changing e.g. evaluation.episodes reruns the
# evaluations and the report, not the training.

import yaml

from pipeline.workflow_plan import CONFIG_KINDS


rule resolve_config:
    output:
        PIPE + "/config/{kind}.yaml",
    params:
        text=lambda w: PLAN.config_text(w.economy, int(w.seed), w.kind),
    wildcard_constraints:
        kind="|".join(CONFIG_KINDS),
    localrule: True
    log:
        "logs/" + PLAN.profile + "/{economy}/seed{seed}/config_{kind}.log",
    run:
        Path(output[0]).parent.mkdir(parents=True, exist_ok=True)
        Path(output[0]).write_text(params.text)


rule workflow_config:
    output:
        R + "/workflow.yaml",
    params:
        text=yaml.safe_dump(config, sort_keys=True),
    localrule: True
    log:
        "logs/" + PLAN.profile + "/workflow_config.log",
    run:
        Path(output[0]).parent.mkdir(parents=True, exist_ok=True)
        Path(output[0]).write_text(params.text)


def final_checkpoint(branch):
    if branch == ABLATION:
        return PIPE + f"/{ABLATION}/{ABLATION}.pt"
    return PIPE + f"/{branch}/{PLAN.final_stage()}.pt"
