"""What a user does, one sub-package per area: dataset, eval, experiments (the record: naming runs,
compare, decisions, inspect), publish, optimize, report, demo; bootstrap, next_steps, cost and
progress stand alone. backends/ is the adapter layer under all of them (local store or Braintrust).
May import: clients, facets, domain, settings, errors; never cli.
"""
