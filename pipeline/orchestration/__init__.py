"""Workflow glue: the plan that `workflow/Snakefile` asks what to build.

    plan.py         WorkflowPlan: pipelines (economy x seed), branches, stages, resolved config files
    overrides.py    overrides that Snakemake's merge would silently drop (`--config economies={}`) are refused
    configfiles.py  `./run main` checks the --configfile files before Snakemake reads them
    archive.py      finished pipelines stored beside the report, standing in for running them again

Plain Python, validated before Snakemake builds its DAG, so a bad profile fails with a message
naming the key and the logic is tested without Snakemake. May import `envs`,
`pipeline.config` and `pipeline.factory`; never `pipeline.learning` or `pipeline.analysis` (tests/test_import_rules.py).
"""
