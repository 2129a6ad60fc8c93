"""The deterministic simulated model's API: one request in, the status and JSON body out.

Services never special-case it: `make_async_client` gives a simulated endpoint an `AsyncOpenAI`
whose HTTP client uses `facetopt.clients.llm.simulated_transport.SimulatedTransport`, which hands
each request to `answer` here. `POST .../chat/completions` and `POST .../responses` get bodies
shaped like the real APIs (ids, usage, finish reasons). This module stays free of HTTP libraries.

The role is read from the request:
- judge: the request offers a `select_choice` tool (autoevals classifiers) -> a tool call
  (chat) or a `function_call` output item (Responses API), see `simulated_judge`;
- proposer (`facetopt optimize`): the request holds `<current_prompt>` and `<failures>` tags ->
  one prompt edit (JSON when `response_format` asks for a JSON schema), see `proposer.proposer_reply`;
- facet value: the facet prompt is in `suffix_messages` (brain-facet through the proxy), or
  between `<facet_prompt>` tags in a message (the audit layout: the labeller then answers without
  its planted mistakes), or is the last message without the data marker; the trace is the text after
  `Here is the data to analyze:`. Models named `brain-facet*` act as the facet model under
  evaluation (`simulated_facet_model`), every other model as the strong labeller (`simulated_facets`).

Test hook: when `FACETOPT_SIMULATED_FAIL` is set to a non-empty string, any request whose text
contains it gets HTTP 500 (the openai client retries, then reports the failure).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from typing import Any

from facetopt.facets.data.text import content_text, find_data_marker
from facetopt.simulation.facet_model import facet_model_value, with_think_block
from facetopt.simulation.judge import judge_choice
from facetopt.simulation.labeller import labeller_reply, labeller_value
from facetopt.simulation.proposer import is_proposer_request, proposer_reply

SIMULATED_HTTP_BASE = "http://simulated.local/v1"
_TAGGED_PROMPT_RE = re.compile(r"<facet_prompt>(.*?)</facet_prompt>", re.DOTALL)
FAIL_ENV = "FACETOPT_SIMULATED_FAIL"
FACET_MODEL_PREFIX = "brain-facet"


def _error(status: int, message: str, kind: str = "invalid_request_error") -> tuple[int, dict]:
    return status, {"error": {"message": message, "type": kind, "param": None, "code": None}}


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _tokens(text: str) -> int:
    return max(1, len(text) // 4)


def _id(prefix: str, body: dict) -> str:
    digest = hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()
    return f"{prefix}-sim{digest[:24]}"


def simulate(method: str, path: str, body: Any) -> tuple[int, dict]:
    """Answer one API request: (HTTP status, JSON body). Shared by the transport and the test fake."""
    if method.upper() != "POST":
        return _error(405, f"method {method} not allowed")
    if not isinstance(body, dict):
        return _error(400, "request body must be a JSON object")
    fail = os.environ.get(FAIL_ENV)
    if fail and any(fail in s for s in _strings(body)):
        return _error(500, f"simulated failure ({FAIL_ENV} matched)", "server_error")
    if path.endswith("/chat/completions"):
        if not body.get("model") or not isinstance(body.get("messages"), list):
            return _error(400, "'model' and 'messages' are required properties")
        return 200, chat_completion(body)
    if path.endswith("/responses"):
        if not body.get("model") or body.get("input") in (None, "", []):
            return _error(400, "'model' and 'input' are required properties")
        return 200, response(body)
    return _error(404, f"unknown path {path}", "not_found_error")


def answer(method: str, path: str, content: bytes) -> tuple[int, dict, str]:
    """Answer one raw request: (HTTP status, JSON body, request id)."""
    try:
        body = json.loads(content or b"null")
    except ValueError:
        status, payload = _error(400, "request body is not valid JSON")
    else:
        status, payload = simulate(method, path, body)
    return status, payload, _id("req", payload)


# -- request reading -------------------------------------------------------------------------------


def _judge_tool(body: dict) -> dict | None:
    for tool in body.get("tools") or []:
        if not isinstance(tool, dict):
            continue
        function = tool["function"] if isinstance(tool.get("function"), dict) else tool
        if function.get("name") == "select_choice":
            return function
    return None


def _allowed_choices(tool: dict) -> list[str] | None:
    choice = ((tool.get("parameters") or {}).get("properties") or {}).get("choice") or {}
    enum = choice.get("enum")
    return [str(c) for c in enum] if isinstance(enum, list) and enum else None


def _suffix_prompt(body: dict) -> str | None:
    groups = body.get("suffix_messages") or body.get("suffixMessages")
    if not isinstance(groups, list) or not groups:
        return None
    group = groups if isinstance(groups[0], dict) else groups[-1]  # one group, or a list of groups
    texts = [content_text(m.get("content")) for m in group if isinstance(m, dict)]
    return "\n\n".join(t for t in texts if t.strip()) or None


def split_trace_and_prompt(messages: list, suffix_prompt: str | None = None) -> tuple[str, str, str]:
    """(trace text, facet prompt, other instructions) of a facet request.

    The prompt is the suffix group when given, else the last message without the data marker; the
    trace is the text after the marker (else the other messages); the instructions are what remains
    of the wrapper (the text before the marker and any other message).
    """
    texts = [content_text(m.get("content")) if isinstance(m, dict) else str(m) for m in messages]
    prompt_index = None
    if suffix_prompt is None:
        prompt_index = next(
            (i for i in range(len(texts) - 1, -1, -1) if find_data_marker(texts[i]) is None), None
        )
    prompt = (
        suffix_prompt
        if suffix_prompt is not None
        else (texts[prompt_index] if prompt_index is not None else "")
    )
    rest = [t for i, t in enumerate(texts) if i != prompt_index]
    marked = [i for i, t in enumerate(rest) if find_data_marker(t) is not None]
    if not marked:
        return "\n".join(rest), prompt, ""
    data_index = marked[-1]
    match = find_data_marker(rest[data_index])
    assert match is not None
    trace = rest[data_index][match.end() :].strip()
    instructions = [t for i, t in enumerate(rest) if i != data_index] + [rest[data_index][: match.start()]]
    return trace, prompt, "\n".join(instructions)


def tagged_prompt(messages: list) -> tuple[str, list] | None:
    """(facet prompt, the other messages) when a message holds the prompt between tags."""
    for index, message in enumerate(messages):
        text = content_text(message.get("content")) if isinstance(message, dict) else str(message)
        match = _TAGGED_PROMPT_RE.search(text)
        if match:
            return match.group(1).strip(), [m for i, m in enumerate(messages) if i != index]
    return None


def facet_reply(model: str, messages: list, body: dict) -> str:
    joined = "\n".join(content_text(m.get("content")) if isinstance(m, dict) else str(m) for m in messages)
    if is_proposer_request(joined):
        response_format = body.get("response_format")
        structured = isinstance(response_format, dict) and response_format.get("type") == "json_schema"
        return proposer_reply(joined, structured)
    tagged = tagged_prompt(messages)
    if tagged is not None and not model.startswith(FACET_MODEL_PREFIX):
        prompt, rest = tagged
        trace, _, _ = split_trace_and_prompt(rest, prompt)
        return labeller_value(trace, prompt)
    trace, prompt, instructions = split_trace_and_prompt(messages, _suffix_prompt(body))
    if model.startswith(FACET_MODEL_PREFIX):
        return with_think_block(trace, prompt, facet_model_value(trace, prompt, instructions))
    return labeller_reply(trace, prompt)


def _max_tokens(body: dict) -> int | None:
    for name in ("max_completion_tokens", "max_tokens", "max_output_tokens"):
        if isinstance(body.get(name), int):
            return body[name]
    return None


def _clip(text: str, max_tokens: int | None) -> tuple[str, bool]:
    """Cut a reply at max_tokens (about 4 characters a token), as a real model stops at the limit."""
    if max_tokens is None or len(text) <= max_tokens * 4:
        return text, False
    return text[: max_tokens * 4], True


# -- reply bodies ----------------------------------------------------------------------------------


def _judge_arguments(tool: dict, messages: list) -> str:
    """The arguments (JSON) of the judge's `select_choice` call."""
    choice, reasons = judge_choice("\n".join(_strings(messages)), _allowed_choices(tool))
    return json.dumps({"reasons": reasons, "choice": choice})


def chat_completion(body: dict) -> dict:
    model, messages = str(body["model"]), body["messages"]
    prompt_tokens = _tokens(" ".join(_strings(messages)))
    tool = _judge_tool(body)
    if tool is not None:
        arguments = _judge_arguments(tool, messages)
        message: dict = {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": _id("call", body),
                    "type": "function",
                    "function": {"name": "select_choice", "arguments": arguments},
                }
            ],
        }
        finish, completion_text = "tool_calls", arguments
    else:
        completion_text, truncated = _clip(facet_reply(model, messages, body), _max_tokens(body))
        message = {"role": "assistant", "content": completion_text, "refusal": None}
        finish = "length" if truncated else "stop"
    completion_tokens = _tokens(completion_text)
    return {
        "id": _id("chatcmpl", body),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": "simulated",
        "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def response(body: dict) -> dict:
    """A Responses API reply: a `select_choice` function call for a judge, else an output message."""
    model, given = str(body["model"]), body["input"]
    messages = given if isinstance(given, list) else [{"role": "user", "content": str(given)}]
    input_tokens = _tokens(" ".join(_strings(messages)))
    tool = _judge_tool(body)
    if tool is not None:
        text = _judge_arguments(tool, messages)
        item: dict = {
            "type": "function_call",
            "id": _id("fc", body),
            "call_id": _id("call", body),
            "name": "select_choice",
            "arguments": text,
            "status": "completed",
        }
    else:
        text, _ = _clip(facet_reply(model, messages, body), _max_tokens(body))
        item = {
            "type": "message",
            "id": _id("msg", body),
            "role": "assistant",
            "status": "completed",
            "content": [{"type": "output_text", "text": text, "annotations": []}],
        }
    output_tokens = _tokens(text)
    return {
        "id": _id("resp", body),
        "object": "response",
        "created_at": time.time(),
        "status": "completed",
        "model": model,
        "output": [item],
        "parallel_tool_calls": True,
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [],
        "usage": {
            "input_tokens": input_tokens,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": output_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": input_tokens + output_tokens,
        },
    }
