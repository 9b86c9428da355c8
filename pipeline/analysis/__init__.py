"""Analysis: what the trained policies do and how close they are to an equilibrium.

    evaluate.py       `python -m pipeline.analysis.evaluate`: a final profile without learning, over many economy-episodes
    probes.py         the consumer policy's answer to each firm's posted wage and price
    best_response.py  `python -m pipeline.analysis.best_response`: one type trained against frozen others (epsilon)
    report/           `python -m pipeline.analysis.report`: the paper's tables and figures for a profile
                      (summary.json, the figures, and summary.md rendered from summary.json alone)

May import `envs`, `pipeline.config`, `pipeline.tracking`, `pipeline.learning` and
`pipeline.orchestration`; nothing imports it back (tests/test_import_rules.py).
"""
