"""`facetopt demo`: the whole loop offline, on the bundled sample with the simulated models.

Entry points: loop (`prepare_demo`, `run_demo`, `without_user_settings`, `DemoSummary`,
`command_line`); optimize (`--optimize`: the optimiser on the weakest facet); tail (the label
audit and the decision page); steps (what the steps share).
May import: the other services (each step calls the same service as its command), clients,
facets, domain, settings, errors; nothing imports the demo but the CLI.
"""
