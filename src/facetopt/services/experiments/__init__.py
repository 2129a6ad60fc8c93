"""The experiment record: which runs exist, how a command names one, and what they decided.

Entry points: registry (`open_experiments`, `Experiments`: names, ids, latest / previous, rows),
compare (`compare_experiments`: the paired verdict) and compare_errors, decisions (a person's
keep / reject, recorded), holdout (the test split's looks), budget (validation evals per
prompt), inspect (`inspect experiments|dataset|sql|rows`), reconcile (partial runs whose rows
reached Braintrust since), run_marks (a run's status written to its Braintrust experiment).
May import: services.backends, clients, facets, domain, settings, errors (never cli, nor the
services above it: dataset, eval, publish, optimize, report, demo).
"""
