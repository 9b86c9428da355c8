# Frozen-opponent best responses of each learned-tax branch's final profile: for every agent type, one search
# per learner, the power check (the same search from an untrained network of the type) and, for consumers and
# firms, one agent deviating alone (pipeline.orchestration.plan.WorkflowPlan.best_response_probes).

for _group in PLAN.best_response_types:

    rule:
        name:
            f"best_response_{_group}"
        input:
            config=f"{PIPE}/config/best_response.yaml",
            checkpoint=f"{PIPE}/{{branch}}/{PLAN.final_stage()}.pt",
        output:
            result=f"{PIPE}/{{branch}}/best_response/{_group}/{{probe}}/best_response.json",
            curve=f"{PIPE}/{{branch}}/best_response/{_group}/{{probe}}/curve.csv",
        wildcard_constraints:
            branch="|".join(PLAN.best_response_branches),
            probe="|".join(PLAN.best_response_probes(_group)),
        params:
            group=_group,
            out=lambda w, output: str(Path(output.result).parent),
            flags=lambda w, _group=_group: PLAN.best_response_flags(w.economy, int(w.seed), _group, w.probe),
        threads: PLAN.threads
        log:
            f"{PIPE_LOGS}/{{branch}}/best_response_{_group}_{{probe}}.log",
        benchmark:
            f"{PIPE_LOGS}/{{branch}}/best_response_{_group}_{{probe}}.benchmark.tsv"
        conda:
            "../envs/dge-marl.yaml"
        shell:
            "python -m pipeline.analysis.best_response --config {input.config} --ckpt {input.checkpoint} "
            "--type {params.group} --out {params.out} {params.flags} --set training.threads={threads} "
            "--no-progress > {log} 2>&1"
