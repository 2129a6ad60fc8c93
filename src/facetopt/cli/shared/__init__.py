"""What the command modules share: option declarations (options), printing and the error
envelope (output), tables that fit the width (layout), the progress line (progress) and Typer's usage
errors as facetopt prints them (usage_errors). May import: typer, click, rich, services, facets,
domain, settings, errors."""
