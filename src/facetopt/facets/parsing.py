"""Turn a raw facet LLM span into FacetCalls: wrapper messages, facet prompt groups, trace text, output."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from facetopt.domain.spans import FacetCall, SourceSpan
from facetopt.facets.naming import facet_name_for
from facetopt.facets.replies import read_value
from facetopt.facets.text import (
    DATA_MARKERS,
    PLACEHOLDER,
    content_text,
    decode_jsonish,
    find_data_marker,
    strip_think,
    text_after_marker,
)

SPAN_FIELDS = ("id", "root_span_id", "span_id", "created", "input", "output", "metadata", "span_attributes")
PREPROCESSED_KEYS = ("preprocessed_text", "preprocessedText", "user_data", "userData")
SUFFIX_KEYS = ("suffix_messages", "suffixMessages")

Message = dict[str, Any]


def span_from_raw(raw: Mapping[str, Any]) -> SourceSpan | None:
    """A SourceSpan from a row as read (fields may be JSON strings); None without a string id/root_span_id."""
    fields = {name: decode_jsonish(raw.get(name)) for name in SPAN_FIELDS}
    if not isinstance(fields["id"], str) or not isinstance(fields["root_span_id"], str):
        return None
    span_id = fields["span_id"]
    created = fields["created"]
    return SourceSpan(
        id=fields["id"],
        root_span_id=fields["root_span_id"],
        span_id=span_id if isinstance(span_id, str) else None,
        created=None if created is None else str(created),
        input=fields["input"],
        output=fields["output"],
        metadata=fields["metadata"] if isinstance(fields["metadata"], dict) else {},
        span_attributes=fields["span_attributes"] if isinstance(fields["span_attributes"], dict) else {},
    )


def parse_span(span: SourceSpan, explicit_facet_name: str | None = None) -> list[FacetCall]:
    """One FacetCall per suffix group (or the single prompt). Raises ValueError(reason) when unusable."""
    span_input = decode_jsonish(span.input)
    messages = input_messages(span_input)
    if not messages:
        raise ValueError("no messages in span input")

    groups = suffix_groups(span_input, span.metadata)
    if groups:
        # a logged input may already carry the suffix messages appended: they are not wrapper messages
        suffix_keys = {(m["role"], m["content"]) for group in groups for m in group}
        messages = [m for m in messages if (m["role"], m["content"]) not in suffix_keys]
        if not messages:
            raise ValueError("no wrapper messages besides the suffix messages")
    text, data_index = _preprocessed_text(span_input, messages)
    if not groups:
        prompt_index = next((i for i in reversed(range(len(messages))) if i != data_index), None)
        if prompt_index is None:
            raise ValueError("no facet prompt: no suffix_messages and no message besides the data")
        groups = [[messages[prompt_index]]]
        messages = messages[:prompt_index] + messages[prompt_index + 1 :]
        if data_index is not None and data_index > prompt_index:
            data_index -= 1

    wrapper, template = _wrapper_and_template(messages, data_index, text)
    outputs = group_outputs(span.output, len(groups))
    model = span.metadata.get("model")
    calls = []
    for group_index, group in enumerate(groups):
        prompt_text = "\n\n".join(message["content"] for message in group)
        facet_name = facet_name_for(prompt_text, span.metadata, explicit_facet_name, group_index, len(groups))
        calls.append(
            FacetCall(
                source_row_id=span.id,
                root_span_id=span.root_span_id,
                span_id=span.span_id,
                created=span.created,
                source_model=model if isinstance(model, str) else None,
                facet_name=facet_name,
                group_index=group_index,
                messages=[dict(m) for m in wrapper],
                template_messages=[dict(m) for m in template],
                suffix_messages=[dict(m) for m in group],
                prompt_text=prompt_text,
                preprocessed_text=text,
                production_output=outputs[group_index],
            )
        )
    return calls


def input_messages(span_input: Any) -> list[Message]:
    """The chat messages of a span input: a list, or an object holding `messages` (or `input`)."""
    span_input = decode_jsonish(span_input)
    if isinstance(span_input, Mapping):
        for key in ("messages", "input"):
            inner = decode_jsonish(span_input.get(key))
            if isinstance(inner, list | Mapping) and inner:
                return input_messages(inner)
        return []
    if isinstance(span_input, list):
        return [m for m in (normalise_message(item) for item in span_input) if m is not None]
    if isinstance(span_input, str) and span_input.strip():
        return [{"role": "user", "content": span_input}]
    return []


def normalise_message(item: Any) -> Message | None:
    """A message as {"role", "content"} with content flattened to text; None for what is not a message."""
    item = decode_jsonish(item)
    if isinstance(item, str):
        return {"role": "user", "content": item}
    if not isinstance(item, Mapping) or ("content" not in item and "role" not in item):
        return None
    role = item.get("role")
    return {"role": role if isinstance(role, str) else "user", "content": content_text(item.get("content"))}


def suffix_groups(span_input: Any, metadata: Mapping[str, Any]) -> list[list[Message]]:
    """The facet prompt groups from `suffix_messages`/`suffixMessages`, in input first, then in metadata."""
    for source in (span_input, metadata):
        if not isinstance(source, Mapping):
            continue
        for key in SUFFIX_KEYS:
            groups = _groups_from(decode_jsonish(source.get(key)))
            if groups:
                return groups
    return []


def _groups_from(value: Any) -> list[list[Message]]:
    if isinstance(value, Mapping):
        value = [value]
    if not isinstance(value, list) or not value:
        return []
    # a flat list of messages is a single group
    decoded = [decode_jsonish(item) for item in value]
    if all(isinstance(item, Mapping) and "messages" not in item for item in decoded):
        group = [m for m in (normalise_message(item) for item in value) if m is not None]
        return [group] if group else []
    groups = []
    for item in value:
        item = decode_jsonish(item)
        if isinstance(item, Mapping) and "messages" in item:
            item = decode_jsonish(item["messages"])
        items = item if isinstance(item, list) else [item]
        group = [m for m in (normalise_message(entry) for entry in items) if m is not None]
        if group:
            groups.append(group)
    return groups


def _preprocessed_text(span_input: Any, messages: list[Message]) -> tuple[str, int | None]:
    """The trace text and the index of the message carrying it (None when no message does)."""
    if isinstance(span_input, Mapping):
        for key in PREPROCESSED_KEYS:
            value = decode_jsonish(span_input.get(key))
            if value is None or value == "":
                continue
            text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
            text = text.strip()
            return text, _data_message_index(messages, text)
    for index in reversed(range(len(messages))):
        after = text_after_marker(messages[index]["content"])
        if after is not None:
            return after, index
    last = len(messages) - 1
    return messages[last]["content"].strip(), last


def _data_message_index(messages: list[Message], text: str) -> int | None:
    for index in reversed(range(len(messages))):
        if find_data_marker(messages[index]["content"]):
            return index
    if text:
        for index in reversed(range(len(messages))):
            if text in messages[index]["content"]:
                return index
    return None


def _wrapper_and_template(
    messages: list[Message], data_index: int | None, text: str
) -> tuple[list[Message], list[Message]]:
    wrapper = [dict(m) for m in messages]
    template = [dict(m) for m in messages]
    if data_index is not None:
        template[data_index]["content"] = _templatise(messages[data_index]["content"], text)
    if data_index is None or PLACEHOLDER not in template[data_index]["content"]:
        # the trace text travelled outside the messages: send it as a data message of our own
        wrapper.append({"role": "user", "content": f"{DATA_MARKERS[0]}\n\n{text}"})
        template.append({"role": "user", "content": f"{DATA_MARKERS[0]}\n\n{PLACEHOLDER}"})
    return wrapper, template


def _templatise(content: str, text: str) -> str:
    if text and text in content:
        return content.replace(text, PLACEHOLDER)
    marker = find_data_marker(content)
    if marker is not None:
        rest = content[marker.end() :]
        gap = rest[: len(rest) - len(rest.lstrip())] or "\n\n"
        return content[: marker.end()] + gap + PLACEHOLDER
    return content


def group_outputs(output: Any, group_count: int) -> list[str]:
    """One production output per suffix group: a span with several groups may answer with one choice each."""
    decoded = decode_jsonish(output)
    choices = decode_jsonish(decoded.get("choices")) if isinstance(decoded, Mapping) else decoded
    if group_count > 1 and isinstance(choices, list) and len(choices) == group_count:
        first = decode_jsonish(choices[0])
        if isinstance(first, Mapping) and ("message" in first or ("text" in first and "type" not in first)):
            return [_value(_raw_output_text(decode_jsonish(choice))) for choice in choices]
    return [output_text(output)] * max(group_count, 1)


def output_text(output: Any) -> str:
    """The value of a span output (a string or chat-completion shaped) as replies.read_value reads
    it (`<think>` blocks, fences, prefaces removed); a reply it cannot read, with <think> removed."""
    return _value(_raw_output_text(decode_jsonish(output)))


def _value(text: str) -> str:
    return read_value(text).value or strip_think(text)


def _raw_output_text(output: Any) -> str:
    if output is None:
        return ""
    if isinstance(output, str):
        return output
    if isinstance(output, list):
        if not output:
            return ""
        first = decode_jsonish(output[0])
        if isinstance(first, Mapping) and ("message" in first or ("text" in first and "type" not in first)):
            return _raw_output_text(first)  # a list of choices
        if isinstance(first, Mapping) and "role" in first:
            return _raw_output_text(output[-1])  # a list of messages: the last one is the reply
        return content_text(output)  # a list of content parts
    if isinstance(output, Mapping):
        if "choices" in output:
            return _raw_output_text(decode_jsonish(output["choices"]))
        if "message" in output:
            return _raw_output_text(decode_jsonish(output["message"]))
        if "content" in output:
            # a string is the model's words even when it looks like a JSON object; parts are flattened
            content = output["content"]
            if isinstance(content, str) and not isinstance(decode_jsonish(content), list):
                return content
            return content_text(content)
        if isinstance(output.get("text"), str):
            return output["text"]
        if "output" in output:
            return _raw_output_text(decode_jsonish(output["output"]))
    return json.dumps(output, ensure_ascii=False)
