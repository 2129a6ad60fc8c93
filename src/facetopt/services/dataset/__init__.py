"""`facetopt dataset create` and `facetopt dataset upload`.

Entry points: `command.run_dataset_create` (settings -> the backend's span source -> create),
`create.create_dataset` (a sub-package: query, parse, sample, label, split, write artifacts, store
through the backend: one function per step), `upload.run_dataset_upload`.
Helpers: `sources` (the SpanSource protocol and the local source adapter), `braintrust` (the
Braintrust span source and the logins per org), `labelling` (concurrent, cached labelling).
May import: clients, facets, domain, settings, errors, services.backends, services.progress,
services.cost, services.bootstrap, services.experiments (holdout).
"""
