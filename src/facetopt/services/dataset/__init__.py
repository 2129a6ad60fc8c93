"""`facetopt dataset create` and `facetopt dataset upload`.

Entry points: `command.run_dataset_create` (settings -> source -> create), `create.create_dataset`
(sample, label, split, write artifacts, upload), `upload.run_dataset_upload`.
Helpers: `sources` (the SpanSource protocol and the local source adapter), `braintrust` (the
Braintrust source and uploader), `labelling` (concurrent, cached ground-truth labelling).
May import: clients, facets, domain, settings, errors, services.progress.
"""
