"""Span fields that arrive as JSON text decode to exactly what the standard library's json gives."""

import json
import math

from facetopt.facets.data.parsing import parse_span, span_from_raw

TRACE = "user: where is my parcel?\nassistant: It ships today."


def raw(**overrides):
    row = {
        "id": "row-1",
        "root_span_id": "root-1",
        "input": json.dumps(
            {"messages": [{"role": "user", "content": f"Here is the data to analyze:\n\n{TRACE}"}]}
        ),
        "output": json.dumps({"choices": [{"message": {"role": "assistant", "content": "parcel"}}]}),
        "metadata": json.dumps(
            {"model": "brain-facet-1", "suffix_messages": [{"role": "user", "content": "P"}]}
        ),
    }
    row.update(overrides)
    return row


def test_numbers_and_escapes_in_metadata_decode_as_json_loads_does():
    text = (
        '{"big": 123456789012345678901234567890, "tiny": 5e-324, "huge": 1e400, "nan": NaN,'
        ' "neg": -Infinity, "float": 0.1, "escaped": "caf\\u00e9 \\ud83d\\ude00 \\/", "dup": 1, "dup": 2}'
    )
    span = span_from_raw(raw(metadata=text))
    assert span is not None
    meta = span.metadata
    assert meta["big"] == 123456789012345678901234567890 and isinstance(meta["big"], int)
    assert meta["tiny"] == 5e-324 and meta["float"] == 0.1
    assert meta["huge"] == math.inf and meta["neg"] == -math.inf and math.isnan(meta["nan"])
    assert meta["escaped"] == "café 😀 /"
    assert meta["dup"] == 2  # the last of repeated keys, as json.loads keeps


def test_text_with_a_lone_surrogate_still_decodes():
    # a JSON string can carry an unpaired surrogate ("\ud800" decoded by an HTTP client): json.loads
    # takes it, so the span parses with the character kept
    content = f"Here is the data to analyze:\n\n{TRACE} \ud800"
    span_input = '{"messages": [{"role": "user", "content": "' + content.replace("\n", "\\n") + '"}]}'
    span = span_from_raw(raw(input=span_input))
    assert span is not None
    [call] = parse_span(span)
    assert call.preprocessed_text == f"{TRACE} \ud800"
    assert call.prompt_text == "P"


def test_text_that_is_not_json_stays_text():
    span = span_from_raw(raw(output="[not json", input="{also not json"))
    assert span is not None
    assert span.output == "[not json" and span.input == "{also not json"


def test_calls_of_one_span_share_no_message_objects():
    groups = [[{"role": "user", "content": "first facet"}], [{"role": "user", "content": "second facet"}]]
    metadata = json.dumps({"model": "m", "suffix_messages": groups})
    first, second = parse_span(span_from_raw(raw(metadata=metadata)))
    first.messages[0]["content"] = "edited"
    first.template_messages[0]["content"] = "edited"
    assert second.messages[0]["content"] == f"Here is the data to analyze:\n\n{TRACE}"
    assert second.template_messages[0]["content"] == "Here is the data to analyze:\n\n{{preprocessed_text}}"
