# Evaluation of every branch's final profile (and of the no-curriculum ablation) without learning.


rule evaluate:
    input:
        config=lambda w: PIPE.format(economy=w.economy, seed=w.seed)
        + ("/config/ablation_evaluate.yaml" if w.branch == ABLATION else "/config/evaluate.yaml"),
        checkpoint=lambda w: final_checkpoint(w.branch).format(economy=w.economy, seed=w.seed),
    output:
        PIPE + "/{branch}/evaluation.json",
    wildcard_constraints:
        branch="|".join(PLAN.evaluated_branches()),
    params:
        rule=lambda w: f"evaluate:{w.branch}",
    threads: PLAN.threads
    log:
        "logs/" + PLAN.profile + "/{economy}/seed{seed}/{branch}/evaluate.log",
    benchmark:
        "logs/" + PLAN.profile + "/{economy}/seed{seed}/{branch}/evaluate.benchmark.tsv"
    conda:
        "../envs/dge-marl.yaml"
    shell:
        "python -m pipeline.evaluate --config {input.config} --ckpt {input.checkpoint} --out {output} "
        "--rule {params.rule} --set training.threads={threads} > {log} 2>&1"
