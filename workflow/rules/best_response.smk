# One frozen-opponent best-response rule per agent type, from each learned-tax branch's final profile.

for _group in PLAN.best_response_types:

    rule:
        name:
            f"best_response_{_group}"
        input:
            config=f"{PIPE}/config/best_response.yaml",
            checkpoint=f"{PIPE}/{{branch}}/{PLAN.final_stage()}.pt",
        output:
            result=f"{PIPE}/{{branch}}/best_response/{_group}/best_response.json",
            curve=f"{PIPE}/{{branch}}/best_response/{_group}/curve.csv",
        wildcard_constraints:
            branch="|".join(PLAN.best_response_branches),
        params:
            group=_group,
            out=lambda w, output: str(Path(output.result).parent),
        threads: PLAN.threads
        log:
            f"{PIPE_LOGS}/{{branch}}/best_response_{_group}.log",
        benchmark:
            f"{PIPE_LOGS}/{{branch}}/best_response_{_group}.benchmark.tsv"
        conda:
            "../envs/dge-marl.yaml"
        shell:
            "python -m pipeline.analysis.best_response --config {input.config} --ckpt {input.checkpoint} "
            "--type {params.group} --out {params.out} --set training.threads={threads} --no-progress > {log} 2>&1"
