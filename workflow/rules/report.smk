# The report: the paper's tables and figures for this project, in results/<profile>/.


rule report:
    input:
        workflow=f"{R}/workflow.yaml",
        results=report_inputs,
    output:
        summary=f"{R}/summary.md",
        data=f"{R}/summary.json",
        figures=[
            report(f"{R}/figures/{name}.png", caption=f"../report/{name}.rst", category="Figures")
            for name in FIGURES
        ],
    params:
        root=lambda w, output: str(Path(output.data).parent),
        logs=LOGS,
    threads: 1
    log:
        f"{LOGS}/report.log",
    conda:
        "../envs/dge-marl.yaml"
    shell:
        "python -m pipeline.analysis.report --root {params.root} --workflow-config {input.workflow} "
        "--logs {params.logs} > {log} 2>&1"
