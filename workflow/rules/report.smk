# The report: the paper's tables and figures for this project, in results/<profile>/.

FIGURES = ["training_curves", "best_response", "welfare_vs_tax", "rollout_firms", "rollout_consumers"]


def _report_inputs(w):
    files = [R + "/workflow.yaml"]
    for economy in ECONOMIES:
        for seed in SEEDS:
            pipe = PIPE.format(economy=economy, seed=seed)
            for branch in PLAN.evaluated_branches():
                files.append(f"{pipe}/{branch}/evaluation.json")
            for stage in PLAN.stages:
                for branch in PLAN.branch_of_stage(stage):
                    files.append(f"{pipe}/{branch}/{stage}.metrics.csv")
            if PLAN.ablation:
                files.append(f"{pipe}/{ABLATION}/{ABLATION}.metrics.csv")
            for branch in PLAN.best_response_branches:
                for group in PLAN.best_response_types:
                    files.append(f"{pipe}/{branch}/best_response/{group}/best_response.json")
                    files.append(f"{pipe}/{branch}/best_response/{group}/curve.csv")
    return files


rule report:
    input:
        _report_inputs,
    output:
        summary=R + "/summary.md",
        data=R + "/summary.json",
        figures=[
            report(
                R + f"/figures/{name}.png",
                caption=f"../report/{name}.rst",
                category="Figures",
            )
            for name in FIGURES
        ],
    params:
        root=R,
    threads: 1
    log:
        "logs/" + PLAN.profile + "/report.log",
    conda:
        "../envs/dge-marl.yaml"
    shell:
        "python -m pipeline.report --root {params.root} --workflow-config {params.root}/workflow.yaml > {log} 2>&1"
