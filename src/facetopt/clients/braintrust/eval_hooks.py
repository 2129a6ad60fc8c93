"""What the eval (inside the runner process) needs from the braintrust SDK beyond `Eval` itself:
a reporter that hands on the summary's experiment, and a login made before the runner's own."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def summary_reporter(on_summary: Callable[[Any], None]) -> Any:
    """The SDK's default reporter (so `--jsonl` summaries still print), calling `on_summary` first."""
    from braintrust.framework import ReporterDef, default_reporter

    def report_eval(evaluator: Any, result: Any, verbose: bool, jsonl: bool) -> Any:
        summary = getattr(result, "summary", None)
        if summary is not None:
            on_summary(summary)
        return default_reporter.report_eval(evaluator, result, verbose, jsonl)

    return ReporterDef(name="facetopt", report_eval=report_eval, report_run=default_reporter.report_run)


def login_from_environment() -> None:
    """`braintrust.login()` with BRAINTRUST_API_KEY, BRAINTRUST_APP_URL and BRAINTRUST_ORG_NAME."""
    import braintrust

    braintrust.login()
