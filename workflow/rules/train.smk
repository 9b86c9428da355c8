# One rule per curriculum stage; each consumes the previous stage's checkpoint. The first
# `prefix_stages` run once per pipeline (branch "prefix"); the rest run once per branch
# (learned taxes, consumer-welfare taxes, each fixed tax).


def _previous_checkpoint(stage):
    previous = PLAN.previous_stage(stage)

    def inputs(w):
        if previous is None:
            return []
        branch = PREFIX if previous in PLAN.prefix_stages else w.branch
        return [PIPE.format(economy=w.economy, seed=w.seed) + f"/{branch}/{previous}.pt"]

    return inputs


def _variant_flags(w):
    return PLAN.branches[w.branch].cli_flags() if w.branch in PLAN.branches else ""


for _stage in PLAN.stages:

    rule:
        name:
            f"train_{_stage}"
        input:
            config=PIPE + "/config/train.yaml",
            init=_previous_checkpoint(_stage),
        output:
            checkpoint=PIPE + f"/{{branch}}/{_stage}.pt",
            metrics=PIPE + f"/{{branch}}/{_stage}.metrics.csv",
        wildcard_constraints:
            branch=PREFIX if _stage in PLAN.prefix_stages else "|".join(PLAN.branches),
        params:
            stage=_stage,
            init=lambda w, input: f"--init {input.init}" if input.init else "",
            variant=_variant_flags,
        threads: PLAN.threads
        log:
            "logs/" + PLAN.profile + f"/{{economy}}/seed{{seed}}/{{branch}}/{_stage}.log",
        benchmark:
            "logs/" + PLAN.profile + f"/{{economy}}/seed{{seed}}/{{branch}}/{_stage}.benchmark.tsv"
        conda:
            "../envs/dge-marl.yaml"
        shell:
            "python -m pipeline.train --config {input.config} --stage {params.stage} {params.init} "
            "--out {output.checkpoint} {params.variant} --set training.threads={threads} --no-progress "
            "> {log} 2>&1"


rule train_nocurriculum:
    input:
        config=PIPE + "/config/ablation_train.yaml",
    output:
        checkpoint=PIPE + f"/{ABLATION}/{ABLATION}.pt",
        metrics=PIPE + f"/{ABLATION}/{ABLATION}.metrics.csv",
    params:
        stage=ABLATION,
    threads: PLAN.threads
    log:
        "logs/" + PLAN.profile + f"/{{economy}}/seed{{seed}}/{ABLATION}.log",
    benchmark:
        "logs/" + PLAN.profile + f"/{{economy}}/seed{{seed}}/{ABLATION}.benchmark.tsv"
    conda:
        "../envs/dge-marl.yaml"
    shell:
        "python -m pipeline.train --config {input.config} --stage {params.stage} "
        "--out {output.checkpoint} --set training.threads={threads} --no-progress > {log} 2>&1"
