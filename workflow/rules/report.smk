# The report: the paper's tables and figures for this project, in results/<profile>/.


# The machine the wall times belong to (benchmarks/machine.py): measured with every core reserved so that no
# training job runs beside the measurement. It starts once every core is free at the same moment, which in a
# local run (its first jobs take the cores one by one) is usually last, before the report; its priority puts
# it ahead of the other jobs ready at that moment. A cluster job has its node's cores to itself anyway, and
# an executor that submits jobs (SLURM) has no total core count to reserve.
rule machine:
    output:
        f"{R}/machine.json",
    params:
        script=os.path.join(workflow.basedir, "..", "benchmarks", "machine.py"),
    threads: lambda wildcards: workflow.cores if workflow.local_exec else 1
    priority: 200
    log:
        f"{LOGS}/machine.log",
    conda:
        "../envs/dge-marl.yaml"
    shell:
        "python {params.script} --out {output} > {log} 2>&1"


rule report:
    input:
        workflow=f"{R}/workflow.yaml",
        results=report_inputs,
        machine=[f"{R}/machine.json"] if PLAN.record_machine else [],
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
