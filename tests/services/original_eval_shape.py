"""An eval shaped like the original scripts' `eval_facet.py`, run through the braintrust SDK in its
own process: it reads facetopt's dataset with `init_dataset`, gives each row the original's row
metadata, scores with functions named as the original's scorers (so the score spans carry those
names) and logs the original's experiment metadata keys, and nothing of facetopt's.

The facet model answers with the expected value, except on rows whose id is listed in
ORIGINAL_WRONG_ROWS (comma list), where it answers NONE. Prints the experiment id on stdout.
Run as a script: `python original_eval_shape.py`, configured by the original's variables.
"""

from __future__ import annotations

import os
from typing import Any

from braintrust import Eval, init_dataset
from braintrust.score import Score

PROJECT = os.environ["FACET_OPTIMIZER_EVAL_PROJECT"]
DATASET = os.environ["FACET_OPTIMIZER_DATASET"]
MODEL = os.environ.get("FACET_OPTIMIZER_MODEL", "brain-facet-1")
SPLITS = sorted(
    s.strip().lower() for s in os.environ.get("FACET_OPTIMIZER_SPLIT", "").split(",") if s.strip()
)
PROMPT_HASHES = dict(item.split("=", 1) for item in os.environ["ORIGINAL_PROMPT_HASHES"].split(","))
WRONG = set(filter(None, os.environ.get("ORIGINAL_WRONG_ROWS", "").split(",")))
NONE_LIKE = {"", "none", "n/a"}


def data() -> Any:
    for row in init_dataset(project=PROJECT, name=DATASET):
        metadata = dict(row.get("metadata") or {})
        if SPLITS and str(metadata.get("split") or "").lower() not in SPLITS:
            continue
        metadata["dataset_row_id"] = row["id"]
        metadata["prompt_file"] = "facet_definitions.yaml"
        yield {**row, "metadata": metadata}


async def task(input: dict[str, Any], hooks: Any) -> str:
    hooks.metadata["facet_name"] = input["facet_name"]
    hooks.metadata["facet_prompt_sha256"] = PROMPT_HASHES[input["facet_name"].lower()]
    hooks.metadata["facet_model"] = MODEL
    hooks.metadata["facet_prompt_file"] = "facet_definitions.yaml"
    return "NONE" if hooks.metadata["dataset_row_id"] in WRONG else str(hooks.expected)


def binary_classification_scores(input: Any, output: str, expected: str, **_: Any) -> list[Score]:
    said, wanted = output.strip().lower() not in NONE_LIKE, expected.strip().lower() not in NONE_LIKE
    meta = {"facet_type": "binary", "output_is_positive": said, "expected_is_positive": wanted}
    return [
        Score(name="binary_decision_match", score=float(said == wanted), metadata=meta),
        Score(name="positive_recall", score=float(said) if wanted else None, metadata=meta),
        Score(name="negative_specificity", score=float(not said) if not wanted else None, metadata=meta),
    ]


def sentiment_label_correct(input: Any, output: str, expected: str, **_: Any) -> float | None:
    if str(input.get("facet_name", "")).lower() != "sentiment":
        return None
    return float(output.split(" ")[0].lower() == expected.split(" ")[0].lower())


def Factuality(input: Any, output: str, expected: str, **_: Any) -> Score:  # noqa: N802 (the span name)
    return Score(name="Factuality", score=1.0 if output == expected else 0.0)


result = Eval(
    PROJECT,
    data=data,
    task=task,
    scores=[binary_classification_scores, sentiment_label_correct, Factuality],
    experiment_name=f"facet-optimizer-{MODEL}",
    metadata={
        "dataset_project": PROJECT,
        "dataset": DATASET,
        "model": MODEL,
        "prompt_file": "facet_definitions.yaml",
        "max_tokens": 20000,
        "request_timeout": 120.0,
        "trial_count": 1,
        "max_rows": None,
        "facet_filter": None,
        "split_filter": SPLITS or None,
        "scoped_dataset_ids_count": 0,
        "factuality_model": "gpt-5.4",
        "prompt_hashes": PROMPT_HASHES,
    },
)
print(result.summary.experiment_id)
