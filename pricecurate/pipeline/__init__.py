"""The job, stage by stage: read -> rules -> dedup -> balance -> split -> leakage -> write -> publish.

``job`` is the list of stages; each stage is a DataFrame -> DataFrame function in a module of its own.
``read`` numbers every input line, ``arrow_rules`` runs ``rules.lines`` in Arrow batches, ``items`` is the items
stage (rules or reused items, then ``dedup``), ``balance``/``split``/``leakage`` follow, ``accounting`` says where
every line went, ``reuse`` decides whether a previous run's items stand, ``estimate`` plans a run before it runs,
``progress``/``live`` say what a running stage has done.
"""
