import json

import pytest

from facetopt.domain.spans import SourceSpan
from facetopt.facets.data.parsing import output_text, parse_span, span_from_raw

TRACE = "user: I want a refund for order 42\nassistant: Sure, I can help."
SYSTEM = {"role": "system", "content": "You summarise conversations."}
DATA = {"role": "user", "content": f"Here is the data to analyze:\n\n{TRACE}"}
TASK_GROUP = [
    {"role": "user", "content": 'You are extracting a "Task" facet.'},
    {"role": "user", "content": "Answer briefly."},
]
SENTIMENT_GROUP = [{"role": "user", "content": "Label sentiment: negative, neutral, positive or mixed."}]


def raw_span(**overrides):
    raw = {
        "id": "row-1",
        "root_span_id": "root-1",
        "span_id": "span-1",
        "created": "2025-01-02T03:04:05Z",
        "input": [SYSTEM, DATA],
        "output": "User wants a refund",
        "metadata": {"model": "brain-facet-1", "suffix_messages": [TASK_GROUP]},
        "span_attributes": {"type": "llm"},
    }
    raw.update(overrides)
    return raw


def parse(explicit=None, **overrides):
    span = span_from_raw(raw_span(**overrides))
    assert span is not None
    return parse_span(span, explicit)


def test_basic_span_gives_one_call_with_all_fields():
    [call] = parse()
    assert call.source_row_id == "row-1" and call.root_span_id == "root-1" and call.span_id == "span-1"
    assert call.created == "2025-01-02T03:04:05Z"
    assert call.source_model == "brain-facet-1"
    assert call.facet_name == "task"
    assert call.messages == [SYSTEM, DATA]
    assert call.template_messages == [
        SYSTEM,
        {"role": "user", "content": "Here is the data to analyze:\n\n{{preprocessed_text}}"},
    ]
    assert call.suffix_messages == TASK_GROUP
    assert call.prompt_text == 'You are extracting a "Task" facet.\n\nAnswer briefly.'
    assert call.preprocessed_text == TRACE
    assert call.production_output == "User wants a refund"


def test_template_renders_back_to_the_messages():
    [call] = parse()
    rendered = [
        {**m, "content": m["content"].replace("{{preprocessed_text}}", call.preprocessed_text)}
        for m in call.template_messages
    ]
    assert rendered == call.messages


def test_every_field_may_arrive_as_a_json_string():
    raw = {
        key: json.dumps(value) if isinstance(value, dict | list) else value
        for key, value in raw_span().items()
    }
    assert isinstance(raw["input"], str) and isinstance(raw["metadata"], str)
    [call] = parse_span(span_from_raw(raw))
    assert (
        call.facet_name == "task" and call.preprocessed_text == TRACE and call.source_model == "brain-facet-1"
    )


def test_suffix_messages_as_a_json_string_inside_metadata():
    [call] = parse(metadata={"model": "brain-facet-1", "suffix_messages": json.dumps([TASK_GROUP])})
    assert call.suffix_messages == TASK_GROUP


@pytest.mark.parametrize("missing", ["id", "root_span_id"])
@pytest.mark.parametrize("bad_value", [None, 7])
def test_rows_without_string_ids_are_skipped(missing, bad_value):
    assert span_from_raw(raw_span(**{missing: bad_value})) is None


def test_list_content_parts_are_flattened():
    parts = {
        "role": "user",
        "content": [
            {"type": "text", "text": "Here is the data to analyse:"},
            {"type": "text", "text": TRACE},
        ],
    }
    [call] = parse(input=[SYSTEM, parts])
    assert call.preprocessed_text == TRACE
    assert call.messages[1] == {"role": "user", "content": f"Here is the data to analyse:\n{TRACE}"}
    assert call.template_messages[1]["content"] == "Here is the data to analyse:\n{{preprocessed_text}}"


@pytest.mark.parametrize(
    "output",
    [
        "User wants a refund",
        {"choices": [{"index": 0, "message": {"role": "assistant", "content": "User wants a refund"}}]},
        [{"index": 0, "message": {"role": "assistant", "content": "User wants a refund"}}],
        {
            "choices": [
                {
                    "message": {
                        "role": "assistant",
                        "content": [{"type": "text", "text": "User wants a refund"}],
                    }
                }
            ]
        },
        json.dumps({"choices": [{"message": {"content": "User wants a refund"}}]}),
        "<think>The user mentions order 42.</think>\n\nUser wants a refund",
        {"choices": [{"message": {"content": "<think>hmm</think>User wants a refund"}}]},
        [{"role": "assistant", "content": "User wants a refund"}],
    ],
)
def test_output_shapes(output):
    [call] = parse(output=output)
    assert call.production_output == "User wants a refund"


def test_missing_output_is_empty():
    assert output_text(None) == ""
    assert output_text({"choices": []}) == ""


@pytest.mark.parametrize("key", ["suffix_messages", "suffixMessages"])
def test_suffix_groups_in_input_object(key):
    [call] = parse(input={"messages": [SYSTEM, DATA], key: [SENTIMENT_GROUP]})
    assert call.facet_name == "sentiment"
    assert call.suffix_messages == SENTIMENT_GROUP


def test_suffix_groups_in_input_win_over_metadata():
    [call] = parse(input={"messages": [SYSTEM, DATA], "suffix_messages": [SENTIMENT_GROUP]})
    assert call.facet_name == "sentiment"  # metadata holds the Task group


def test_camel_case_suffix_messages_in_metadata():
    [call] = parse(metadata={"model": "brain-facet-1", "suffixMessages": [SENTIMENT_GROUP]})
    assert call.facet_name == "sentiment"


def test_input_object_with_input_key():
    [call] = parse(input={"input": [SYSTEM, DATA]})
    assert call.messages == [SYSTEM, DATA] and call.preprocessed_text == TRACE


@pytest.mark.parametrize("key", ["preprocessed_text", "preprocessedText", "user_data", "userData"])
def test_preprocessed_text_fields_win_over_the_marker(key):
    [call] = parse(input={"messages": [SYSTEM, DATA], key: f"  {TRACE}\n"})
    assert call.preprocessed_text == TRACE
    assert call.template_messages[1]["content"] == "Here is the data to analyze:\n\n{{preprocessed_text}}"


def test_preprocessed_text_field_differing_from_the_message_replaces_the_text_after_the_marker():
    [call] = parse(input={"messages": [SYSTEM, DATA], "preprocessed_text": "a shorter rendering"})
    assert call.preprocessed_text == "a shorter rendering"
    assert call.template_messages[1]["content"] == "Here is the data to analyze:\n\n{{preprocessed_text}}"


def test_preprocessed_text_field_not_in_any_message_gets_a_data_message():
    [call] = parse(input={"messages": [SYSTEM], "preprocessed_text": "the trace"})
    assert call.messages == [SYSTEM, {"role": "user", "content": "Here is the data to analyze:\n\nthe trace"}]
    assert call.template_messages[-1]["content"] == "Here is the data to analyze:\n\n{{preprocessed_text}}"


def test_without_marker_the_last_message_is_the_data():
    plain = {"role": "user", "content": TRACE}
    [call] = parse(input=[SYSTEM, plain])
    assert call.preprocessed_text == TRACE
    assert call.template_messages == [SYSTEM, {"role": "user", "content": "{{preprocessed_text}}"}]


def test_several_groups_give_one_call_each():
    metadata = {
        "model": "brain-facet-latest",
        "suffix_messages": [TASK_GROUP, SENTIMENT_GROUP, [{"role": "user", "content": "Extract the thing."}]],
    }
    calls = parse(metadata=metadata)
    assert [c.facet_name for c in calls] == ["task", "sentiment", "facet-3"]
    assert [c.group_index for c in calls] == [0, 1, 2]
    assert all(c.messages == [SYSTEM, DATA] for c in calls)
    assert calls[1].prompt_text == SENTIMENT_GROUP[0]["content"]


def test_groups_wrapped_in_objects_and_a_flat_group():
    wrapped = parse(metadata={"suffix_messages": [{"messages": TASK_GROUP}, {"messages": SENTIMENT_GROUP}]})
    assert [c.facet_name for c in wrapped] == ["task", "sentiment"]
    [flat] = parse(metadata={"suffix_messages": TASK_GROUP})
    assert flat.suffix_messages == TASK_GROUP


def test_suffix_messages_echoed_in_the_input_are_not_wrapper_messages():
    [call] = parse(input=[SYSTEM, DATA, *TASK_GROUP])
    assert call.messages == [SYSTEM, DATA]


def test_without_suffix_groups_the_last_non_data_message_is_the_prompt():
    prompt = {"role": "system", "content": "Classify sentiment: negative, neutral, positive, mixed."}
    [call] = parse(input=[prompt, DATA], metadata={"model": "brain-facet-1"})
    assert call.suffix_messages == [prompt]
    assert call.prompt_text == prompt["content"]
    assert call.messages == [DATA]
    assert call.facet_name == "sentiment"


def test_without_suffix_groups_a_trailing_prompt_after_the_data():
    prompt = {"role": "user", "content": 'You are extracting a "Goal" facet.'}
    [call] = parse(input=[SYSTEM, DATA, prompt], metadata={})
    assert call.facet_name == "goal"
    assert call.messages == [SYSTEM, DATA]
    assert call.template_messages[1]["content"].endswith("{{preprocessed_text}}")


def test_explicit_and_metadata_names():
    [explicit] = parse(explicit="Refunds")
    assert explicit.facet_name == "refunds"
    [from_metadata] = parse(metadata={"facet_name": "Billing", "suffix_messages": [TASK_GROUP]})
    assert from_metadata.facet_name == "billing"


@pytest.mark.parametrize("span_input", [None, [], {"messages": []}, {"other": 1}])
def test_no_messages_raises(span_input):
    with pytest.raises(ValueError, match="no messages"):
        parse(input=span_input)


def test_no_prompt_raises():
    with pytest.raises(ValueError, match="no facet prompt"):
        parse(input=[DATA], metadata={})


def test_span_from_raw_keeps_non_dict_metadata_out():
    span = span_from_raw(raw_span(metadata="not an object", span_attributes=None))
    assert isinstance(span, SourceSpan)
    assert span.metadata == {} and span.span_attributes == {}


def test_several_groups_answered_with_one_choice_each_map_in_order() -> None:
    from facetopt.domain.spans import SourceSpan
    from facetopt.facets.data.parsing import parse_span

    span = SourceSpan(
        id="r1",
        root_span_id="t1",
        input={
            "messages": [{"role": "user", "content": "Here is the data to analyze:\n\nUser: hi"}],
            "suffix_messages": [
                [{"role": "user", "content": 'You are extracting a "Task" facet.'}],
                [{"role": "user", "content": 'You are extracting a "Issues" facet.'}],
            ],
        },
        output={
            "choices": [{"message": {"content": "User wants to say hi"}}, {"message": {"content": "NONE"}}]
        },
    )
    calls = parse_span(span)
    assert [(c.facet_name, c.production_output) for c in calls] == [
        ("task", "User wants to say hi"),
        ("issues", "NONE"),
    ]
