# Resolved configuration files. Each kind holds only the sections its rules depend on, and is
# rewritten only when its content changes (a params change), so changing e.g.
# evaluation.episodes reruns the evaluations and the report, not the training. The text is
# written by the shell: a run directive would start a second Snakemake process per file.

import yaml

from pipeline.orchestration.plan import CONFIG_KINDS


rule resolve_config:
    output:
        f"{PIPE}/config/{{kind}}.yaml",
    params:
        text=lambda w: PLAN.config_text(w.economy, int(w.seed), w.kind),
    wildcard_constraints:
        kind="|".join(CONFIG_KINDS),
    localrule: True
    # Instant, and every pipeline's first job waits for it: never queued behind a training job.
    priority: 100
    log:
        f"{PIPE_LOGS}/config_{{kind}}.log",
    conda:
        "../envs/dge-marl.yaml"
    shell:
        "printf '%s' {params.text:q} > {output} 2> {log}"


rule workflow_config:
    output:
        f"{R}/workflow.yaml",
    params:
        text=yaml.safe_dump(config, sort_keys=True),
    localrule: True
    log:
        f"{LOGS}/workflow_config.log",
    conda:
        "../envs/dge-marl.yaml"
    shell:
        "printf '%s' {params.text:q} > {output} 2> {log}"
