"""The heavy libraries: imported only inside clients (tests/test_layering.py) and never loaded by
`facetopt --help` (tests/cli/test_help.py)."""

HEAVY = (
    "braintrust",
    "openai",
    "autoevals",
    "duckdb",
    "sqlglot",
    "httpx",
    "httpx2",
    "ruamel",
    "jinja2",
    "matplotlib",
)
