"""Workflow glue: the plan that `workflow/Snakefile` asks what to build.

    plan.py  WorkflowPlan: pipelines (economy x seed), branches, stages, resolved config files

Plain Python, validated before Snakemake builds its DAG, so a bad profile fails with a message
naming the key and the logic is tested without Snakemake. May import `envs` and
`pipeline.config`; never `pipeline.learning` or `pipeline.analysis` (tests/test_import_rules.py).
"""
