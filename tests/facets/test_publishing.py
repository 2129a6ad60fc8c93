"""The facet function definition: the original publish script's slug, name and body rules."""

from facetopt.facets.prompts.publishing import (
    function_definition,
    function_slug,
    readback_mismatches,
    slugify,
)


def test_slugs_are_lower_case_with_runs_of_other_characters_as_one_dash():
    assert slugify("Facet Optimizer--Issues ") == "facet-optimizer-issues"
    assert function_slug("facet-optimizer", "Customer's Tone (v2)") == "facet-optimizer-customer-s-tone-v2"


def definition(**overrides):
    values = dict(
        project_id="p1", project_name="Prod", facet_name="Issues", prompt_text="Say NONE.",
        prompt_sha256="ab" * 32, no_match_pattern=None, model="brain-facet-1", name="Issues",
        slug="facet-optimizer-issues", if_exists="replace", prompt_file="f.yaml",
    )  # fmt: skip
    return function_definition(**(values | overrides))


def test_the_no_match_pattern_travels_only_when_the_facet_has_one():
    assert "no_match_pattern" not in definition()["function_data"]
    assert definition(no_match_pattern="^none")["function_data"]["no_match_pattern"] == "^none"


def test_a_readback_is_compared_on_type_prompt_model_and_pattern():
    sent = definition(no_match_pattern="^none")
    assert readback_mismatches(sent, {**sent, "id": "f1"}) == []
    changed = {**sent, "function_type": "prompt", "function_data": {**sent["function_data"], "prompt": "x"}}
    assert readback_mismatches(sent, changed) == [
        "type is 'prompt', not 'facet'",
        "the prompt text differs from the one sent",
    ]
