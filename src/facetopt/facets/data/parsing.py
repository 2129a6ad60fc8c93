"""Turn a raw facet LLM span into FacetCalls: wrapper messages, facet prompt groups, trace text, output."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pydantic_core import from_json

from facetopt.domain.spans import FacetCall, SourceSpan
from facetopt.facets.data.naming import facet_name_for
from facetopt.facets.data.text import (
    DATA_MARKERS,
    PLACEHOLDER,
    content_text,
    decode_jsonish,
    find_data_marker,
    strip_think,
    text_after_marker,
)
from facetopt.facets.prompts.replies import read_value

SPAN_FIELDS = ("id", "root_span_id", "span_id", "created", "input", "output", "metadata", "span_attributes")
PREPROCESSED_KEYS = ("preprocessed_text", "preprocessedText", "user_data", "userData")
SUFFIX_KEYS = ("suffix_messages", "suffixMessages")

Message = dict[str, Any]

# The full ingest pass parses every facet span, so the helpers below skip the work that cannot change
# the result: decoding a value that is not a string, and an ABC check on a plain dict.


def _decode(value: Any) -> Any:
    """decode_jsonish, with pydantic's JSON parser (faster than json.loads, same values for JSON text)."""
    if not isinstance(value, str):
        return value
    stripped = value.lstrip()
    if not stripped.startswith(("{", "[")):
        return value
    try:
        return from_json(stripped)
    except Exception:
        # json.loads takes some text this parser refuses (a lone surrogate): it has the last word
        return decode_jsonish(value)


def _is_map(value: Any) -> bool:
    return value.__class__ is dict or isinstance(value, Mapping)


def span_from_raw(raw: Mapping[str, Any]) -> SourceSpan | None:
    """A SourceSpan from a row as read (fields may be JSON strings); None without a string id/root_span_id."""
    get = raw.get
    span_id, root_span_id = _decode(get("id")), _decode(get("root_span_id"))
    if not isinstance(span_id, str) or not isinstance(root_span_id, str):
        return None
    own_span_id, created = _decode(get("span_id")), _decode(get("created"))
    metadata, attributes = _decode(get("metadata")), _decode(get("span_attributes"))
    return SourceSpan(
        id=span_id,
        root_span_id=root_span_id,
        span_id=own_span_id if isinstance(own_span_id, str) else None,
        created=None if created is None else str(created),
        input=_decode(get("input")),
        output=_decode(get("output")),
        metadata=metadata if isinstance(metadata, dict) else {},
        span_attributes=attributes if isinstance(attributes, dict) else {},
    )


def span_root(raw: Mapping[str, Any]) -> str | None:
    """The trace (root span id) of a row as read, when `span_from_raw` would take it."""
    span_id, root_span_id = _decode(raw.get("id")), _decode(raw.get("root_span_id"))
    return root_span_id if isinstance(span_id, str) and isinstance(root_span_id, str) else None


def parse_span(span: SourceSpan, explicit_facet_name: str | None = None) -> list[FacetCall]:
    """One FacetCall per suffix group (or the single prompt). Raises ValueError(reason) when unusable."""
    span_input = _decode(span.input)
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
        prompt_text = "\n\n".join([message["content"] for message in group])
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
                # validation copies each list and message: the calls share no mutable state
                messages=wrapper,
                template_messages=template,
                suffix_messages=group,
                prompt_text=prompt_text,
                preprocessed_text=text,
                production_output=outputs[group_index],
            )
        )
    return calls


def input_messages(span_input: Any) -> list[Message]:
    """The chat messages of a span input: a list, or an object holding `messages` (or `input`)."""
    span_input = _decode(span_input)
    if _is_map(span_input):
        for key in ("messages", "input"):
            inner = _decode(span_input.get(key))
            if (isinstance(inner, list) or _is_map(inner)) and inner:
                return input_messages(inner)
        return []
    if isinstance(span_input, list):
        return [m for m in (normalise_message(item) for item in span_input) if m is not None]
    if isinstance(span_input, str) and span_input.strip():
        return [{"role": "user", "content": span_input}]
    return []


def normalise_message(item: Any) -> Message | None:
    """A message as {"role", "content"} with content flattened to text; None for what is not a message."""
    item = _decode(item)
    if isinstance(item, str):
        return {"role": "user", "content": item}
    if not _is_map(item) or ("content" not in item and "role" not in item):
        return None
    role = item.get("role")
    content = item.get("content")
    if not (isinstance(content, str) and not content.lstrip().startswith(("{", "["))):
        content = content_text(content)  # parts, or a string holding them
    return {"role": role if isinstance(role, str) else "user", "content": content}


def suffix_groups(span_input: Any, metadata: Mapping[str, Any]) -> list[list[Message]]:
    """The facet prompt groups from `suffix_messages`/`suffixMessages`, in input first, then in metadata."""
    for source in (span_input, metadata):
        if not _is_map(source):
            continue
        for key in SUFFIX_KEYS:
            value = source.get(key)
            if value is None:
                continue
            groups = _groups_from(_decode(value))
            if groups:
                return groups
    return []


def _groups_from(value: Any) -> list[list[Message]]:
    if _is_map(value):
        value = [value]
    if not isinstance(value, list) or not value:
        return []
    # a flat list of messages is a single group
    decoded = [_decode(item) for item in value]
    if all(_is_map(item) and "messages" not in item for item in decoded):
        group = [m for m in (normalise_message(item) for item in decoded) if m is not None]
        return [group] if group else []
    groups = []
    for item in decoded:
        if _is_map(item) and "messages" in item:
            item = _decode(item["messages"])
        items = item if isinstance(item, list) else [item]
        group = [m for m in (normalise_message(entry) for entry in items) if m is not None]
        if group:
            groups.append(group)
    return groups


def _preprocessed_text(span_input: Any, messages: list[Message]) -> tuple[str, int | None]:
    """The trace text and the index of the message carrying it (None when no message does)."""
    if _is_map(span_input):
        for key in PREPROCESSED_KEYS:
            value = _decode(span_input.get(key))
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
    # the messages are this parse's own (normalise_message made them); only the data message differs
    wrapper = list(messages)
    template = list(messages)
    if data_index is not None:
        template[data_index] = {
            **messages[data_index],
            "content": _templatise(messages[data_index]["content"], text),
        }
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
    decoded = _decode(output)
    choices = _decode(decoded.get("choices")) if _is_map(decoded) else decoded
    if group_count > 1 and isinstance(choices, list) and len(choices) == group_count:
        first = _decode(choices[0])
        if _is_map(first) and ("message" in first or ("text" in first and "type" not in first)):
            return [_value(_raw_output_text(_decode(choice))) for choice in choices]
    return [output_text(decoded)] * max(group_count, 1)


def output_text(output: Any) -> str:
    """The value of a span output (a string or chat-completion shaped) as replies.read_value reads
    it (`<think>` blocks, fences, prefaces removed); a reply it cannot read, with <think> removed."""
    return _value(_raw_output_text(_decode(output)))


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
        first = _decode(output[0])
        if _is_map(first) and ("message" in first or ("text" in first and "type" not in first)):
            return _raw_output_text(first)  # a list of choices
        if _is_map(first) and "role" in first:
            return _raw_output_text(output[-1])  # a list of messages: the last one is the reply
        return content_text(output)  # a list of content parts
    if _is_map(output):
        if "choices" in output:
            return _raw_output_text(_decode(output["choices"]))
        if "message" in output:
            return _raw_output_text(_decode(output["message"]))
        if "content" in output:
            # a string is the model's words even when it looks like a JSON object; parts are flattened
            content = output["content"]
            if isinstance(content, str) and not isinstance(decode_jsonish(content), list):
                return content
            return content_text(content)
        if isinstance(output.get("text"), str):
            return output["text"]
        if "output" in output:
            return _raw_output_text(_decode(output["output"]))
    return json.dumps(output, ensure_ascii=False)
