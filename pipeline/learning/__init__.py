"""Learning: how the agents' policies are built, trained through the curriculum and saved.

    distributions.py  masked multi-head categorical distributions
    policies.py       per-type actor-critic networks as TorchRL modules (and the `policy.factory` hook)
    equivariant.py    the firm-equivariant consumer network (`policy.factory: pipeline.learning.equivariant:build`)
    algorithms.py     PPO and PG per agent type over TorchRL's losses and GAE
    curriculum.py     stages and schedules as data: what trains, action ranges, penalties, entropy
    session.py        one environment, its policies and learners: rollouts and updates
    metrics.py        per-episode training metrics and their CSV log; confidence intervals
    checkpoint.py     atomic, validated checkpoints (content hash, finite state)
    files.py          atomic writes and output directories checked before a long run
    command.py        how the command-line tools end: one line per failure the user can act on
    train.py          `python -m pipeline.learning.train`: one curriculum stage, checkpoint in -> checkpoint out

May import `envs`, `pipeline.config` and `pipeline.tracking`; never `pipeline.analysis` or
`pipeline.orchestration` (tests/test_import_rules.py).
"""
