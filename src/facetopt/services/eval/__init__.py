"""`facetopt eval`: the facet model over the dataset, through `bt eval` or the SDK runner.

In the parent process (`facetopt eval`): `run` (entry point `run_eval`), `plan` (rows, prompts,
endpoints), `launch` (the runner's environment and process), `record` (registry, local
experiment, per-facet metrics from the results file), `status` (the run's status and its cause),
`unfinished` (a run that ended early), `results` (reading the results file).
Inside the eval runner (imported by `facetopt/eval_facet.py`, which bt runs): `arguments`
(`eval_arguments`, the arguments of `braintrust.Eval`), `task` (the task and its call cache),
`scorers` (the scorer functions), `runner_errors` (the eval's error file), `config` (the config the
parent wrote, read from the environment), `results` (the results file writer).
May import: clients, facets, domain, settings, errors, services.backends, services.progress,
services.cost, services.experiments (registry, budget, holdout, run_marks).
"""
