# One rule per curriculum stage; each consumes the previous stage's checkpoint. The first
# `prefix_stages` run once per pipeline (branch "prefix"); the rest run once per branch
# (learned taxes, consumer-welfare taxes, each fixed tax).

for _stage in PLAN.stages:

    rule:
        name:
            f"train_{_stage}"
        input:
            config=f"{PIPE}/config/train.yaml",
            init=previous_checkpoint(_stage),
        output:
            checkpoint=f"{PIPE}/{{branch}}/{_stage}.pt",
            metrics=f"{PIPE}/{{branch}}/{_stage}.metrics.csv",
        wildcard_constraints:
            branch=PREFIX if _stage in PLAN.prefix_stages else "|".join(PLAN.branches),
        params:
            stage=_stage,
            init=lambda w, input: f"--init {input.init}" if input.init else "",
            variant=variant_flags,
        threads: PLAN.threads
        # The curriculum is the critical path of every result, earlier stages first so that every
        # pipeline's shared prefix is done early; the ablation fills idle cores.
        priority: 10 + len(PLAN.stages) - PLAN.stages.index(_stage)
        log:
            f"{PIPE_LOGS}/{{branch}}/{_stage}.log",
        benchmark:
            f"{PIPE_LOGS}/{{branch}}/{_stage}.benchmark.tsv"
        conda:
            "../envs/dge-marl.yaml"
        shell:
            "python -m pipeline.learning.train --config {input.config} --stage {params.stage} {params.init} "
            "--out {output.checkpoint} {params.variant} --set training.threads={threads} --no-progress "
            "> {log} 2>&1"


rule train_nocurriculum:
    input:
        config=f"{PIPE}/config/ablation_train.yaml",
    output:
        checkpoint=f"{PIPE}/{ABLATION}/{ABLATION}.pt",
        metrics=f"{PIPE}/{ABLATION}/{ABLATION}.metrics.csv",
    params:
        stage=ABLATION,
    threads: PLAN.threads
    log:
        f"{PIPE_LOGS}/{ABLATION}.log",
    benchmark:
        f"{PIPE_LOGS}/{ABLATION}.benchmark.tsv"
    conda:
        "../envs/dge-marl.yaml"
    shell:
        "python -m pipeline.learning.train --config {input.config} --stage {params.stage} "
        "--out {output.checkpoint} --set training.threads={threads} --no-progress > {log} 2>&1"
