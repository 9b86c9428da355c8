"""Learning, analysis and workflow glue around the economies of `envs`.

The package has three rooms and four shared modules; data flows one way, config -> learning ->
analysis, and the workflow (`workflow/Snakefile`) only calls the rooms' command-line entry points.

    pipeline/config.py      ExperimentConfig: every learner, curriculum and evaluation setting
    pipeline/profiles.py    workflow profiles resolved to the experiment of one economy, seed and rule kind
    pipeline/tracking/      MLflow runs, metrics and artifacts (lazy import, optional), the store's reachability
    pipeline/factory.py     the `policy.factory` hook: find and check a user's network builder (torch-free)
    pipeline/learning/      networks, learners, curriculum, the training loop and its checkpoints
    pipeline/analysis/      evaluation, best responses, probes and the report
    pipeline/orchestration/ the workflow's plan: which pipelines, branches and stages a profile asks for

Import rules (tests/test_import_rules.py enforces them):
- `pipeline` may import `envs`; `envs` and `gpu` never import `pipeline`;
- nothing in `pipeline` imports the Snakemake workflow (`workflow/`);
- `config` and `factory` import only `envs`; `profiles` only `config` and `envs`; `tracking` only `config`;
- `learning` imports `config`, `factory`, `profiles`, `tracking` and `envs`, never `analysis` or `orchestration`;
- `orchestration` imports `config`, `factory`, `profiles` and `envs`, never `learning` or `analysis`;
- `analysis` may import everything above.
"""
