# Evaluation of every branch's final profile (and of the no-curriculum ablation) without learning.


rule evaluate:
    input:
        config=evaluation_config,
        checkpoint=final_checkpoint,
    output:
        f"{PIPE}/{{branch}}/evaluation.json",
    wildcard_constraints:
        branch="|".join(PLAN.evaluated_branches()),
    params:
        rule=lambda w: f"evaluate:{w.branch}",
    threads: PLAN.threads
    log:
        f"{PIPE_LOGS}/{{branch}}/evaluate.log",
    benchmark:
        f"{PIPE_LOGS}/{{branch}}/evaluate.benchmark.tsv"
    conda:
        "../envs/dge-marl.yaml"
    shell:
        "python -m pipeline.analysis.evaluate --config {input.config} --ckpt {input.checkpoint} --out {output} "
        "--rule {params.rule} --set training.threads={threads} > {log} 2>&1"
