"""The facet function a prompt is published as, in the original publish script's request shape.

A facet function is `{project_id, name, slug, description, function_type: "facet", function_data:
{type: "facet", prompt, model, no_match_pattern}, if_exists, metadata, tags}`. The prompt is the
facet's suffix message contents joined by a blank line (the prompt text whose sha256 identifies
the prompt version), so what runs in production is exactly what was evaluated.
"""

from __future__ import annotations

import re
from typing import Any

FUNCTION_TYPE = "facet"
METADATA_SOURCE = "facet-optimizer"
TAG = "facet-optimizer"
DEFAULT_SLUG_PREFIX = "facet-optimizer"
IF_EXISTS_CHOICES = ("error", "replace", "ignore")


def slugify(text: str) -> str:
    """Lower case; every run of characters other than a-z and 0-9 becomes one `-`."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def function_slug(prefix: str, facet_name: str) -> str:
    return slugify(f"{prefix}-{facet_name}")


def function_name(facet_name: str, publishing_one: bool) -> str:
    return facet_name if publishing_one else f"{facet_name} facet"


def function_definition(
    *,
    project_id: str | None,
    project_name: str,
    facet_name: str,
    prompt_text: str,
    prompt_sha256: str,
    no_match_pattern: str | None,
    model: str,
    name: str,
    slug: str,
    if_exists: str,
    prompt_file: str,
    extra_metadata: dict[str, Any] | None = None,
) -> dict[str, Any]:
    data: dict[str, Any] = {"type": FUNCTION_TYPE, "prompt": prompt_text, "model": model}
    if no_match_pattern:
        data["no_match_pattern"] = no_match_pattern
    metadata = {
        "source": METADATA_SOURCE,
        "project": project_name,
        "prompt_file": prompt_file,
        "facet_name": facet_name,
        "prompt_sha256": prompt_sha256,
        **(extra_metadata or {}),
    }
    return {
        "project_id": project_id,
        "name": name,
        "slug": slug,
        "description": f"{facet_name} facet prompt {prompt_sha256[:12]}, published by facetopt",
        "function_type": FUNCTION_TYPE,
        "function_data": data,
        "if_exists": if_exists,
        "metadata": metadata,
        "tags": [TAG, facet_name],
    }


def readback_mismatches(sent: dict[str, Any], stored: dict[str, Any]) -> list[str]:
    """What differs between a function as sent and as Braintrust returns it (type, prompt, model,
    no-match pattern); empty when the stored function is the one sent."""
    problems = []
    sent_data, stored_data = sent["function_data"], stored.get("function_data") or {}
    stored_type = stored.get("function_type") or stored_data.get("type")
    if stored_type != FUNCTION_TYPE or stored_data.get("type") != FUNCTION_TYPE:
        problems.append(f"type is {stored_type!r}, not {FUNCTION_TYPE!r}")
    if stored_data.get("prompt") != sent_data["prompt"]:
        problems.append("the prompt text differs from the one sent")
    if stored_data.get("model") != sent_data["model"]:
        problems.append(f"model is {stored_data.get('model')!r}, not {sent_data['model']!r}")
    if stored_data.get("no_match_pattern") != sent_data.get("no_match_pattern"):
        problems.append("no_match_pattern differs from the one sent")
    return problems
