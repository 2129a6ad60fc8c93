"""Generate the bundled sample of synthetic support-bot traces: `python -m tests.sample.generate`.

Deterministic (random.Random(7)). Each trace has a root `task` span, the bot's own LLM call (another
model), sometimes a tool span and a `task` span of the Topics pipeline, and facet LLM spans for task,
sentiment and issues in every shape facet-workflow.md describes (JSON-string fields, content parts,
choice-shaped outputs, <think> blocks, suffix groups in input or metadata, camelCase keys, several
groups in one span, explicit facet names). About one session in seven has no real request
(`no_request`: a notification, a bare "hi" or "test", an empty message, a health check), so every
facet has none-like values. Most roots carry the final `facets`, under varied key casing. A few
lines are malformed and a few rows lack ids, as real exports have.
"""

# ruff: noqa: E501 (the scenario table reads best one sentence per line)

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.sample.no_request import build_no_request_session

SEED = 7
TRACE_COUNT = 300
NO_REQUEST_SHARE = 0.15  # sessions with no request: Task and Sentiment are NONE
START = datetime(2025, 3, 3, 8, 0, tzinfo=UTC)
SPREAD = timedelta(days=5)

SYSTEM_PROMPT = (
    "You analyze conversations between customers and Acme's AI support assistant. Each request holds "
    "one transcript, then instructions for the facet to extract."
)
TASK_PROMPT = (
    "Identify the task the user is trying to accomplish in this support conversation.\n\n"
    'Write one short sentence that starts with "User wants to" and names the concrete goal, for example '
    '"User wants to get a refund for a duplicate charge". Describe the user\'s main goal, not how the '
    "assistant responded. If there is no discernible task, answer NONE."
)
SENTIMENT_PROMPT = (
    "Classify the overall sentiment the user expresses in this support conversation.\n\n"
    "Answer with one label - Negative, Neutral, Positive or Mixed - followed by a dash and a short "
    'reason, for example "Negative - the user is frustrated that the refund has not arrived". Use '
    "Mixed when the user's mood changes or is both positive and negative. If the user says nothing, answer NONE."
)
ISSUES_PROMPT = (
    "Review the assistant's replies in this support conversation and report problems with them.\n\n"
    "Look for: no response or an empty reply; leaked reasoning (internal notes, policies or thinking "
    "shown to the user); claiming an action was taken when it was not; wrong or contradictory "
    "information; apologies that resolve nothing; ignoring the user's question.\n\n"
    "Describe the most important problem in one sentence. If the replies have no such problems, answer NONE."
)
PROMPTS = {"task": TASK_PROMPT, "sentiment": SENTIMENT_PROMPT, "issues": ISSUES_PROMPT}

# scenario: opener, clean reply, task truth, closing question, an answer to that question
SCENARIOS = [
    (
        "refund",
        "Hi, I was charged twice for my {plan} plan this month (order #{order}). Can I get a refund for the duplicate charge?",
        'Tool: refunds.create(order={order}) -> {{"status": "succeeded"}}\nAssistant: Done: the duplicate charge on order #{order} has been refunded to your card.',
        "get a refund for a duplicate {plan} charge",
        "How long will the refund take to show up on my card?",
        "Refunds usually appear on your card within 5-10 business days.",
    ),
    (
        "refund",
        "My {product} arrived broken, the lid is cracked. I'd like a refund please.",
        'Tool: returns.label(order={order}) -> {{"label": "sent"}}\nAssistant: I\'ve emailed you a prepaid return label; the refund is issued as soon as the parcel is scanned.',
        "get a refund for a broken {product}",
        "Do I need the original box to send it back?",
        "No, any sturdy box works for returns.",
    ),
    (
        "password",
        "I can't log in. The password reset email never arrives and I've tried three times.",
        "Assistant: Reset emails to your domain were being blocked; I've allow-listed it. Please request one more reset.",
        "regain access to their account because reset emails do not arrive",
        "Should I check my spam folder too?",
        "Yes, check your spam folder and mark our emails as safe.",
    ),
    (
        "shipping",
        "Where is my order #{order}? It was supposed to arrive on {day}.",
        "Assistant: Order #{order} is at the regional depot and is scheduled for delivery tomorrow before 6pm.",
        "find out where their late order #{order} is",
        "Can I pick it up from the depot instead?",
        "Yes, depot pickup is available with your order number and an ID.",
    ),
    (
        "shipping",
        "I need to change the delivery address for order #{order} before it ships.",
        'Tool: orders.update_address(order={order}) -> {{"ok": true}}\nAssistant: The new address is saved on order #{order}.',
        "change the delivery address of order #{order}",
        "Is there a fee for changing the address?",
        "There is no fee for changing an address before shipping.",
    ),
    (
        "bug",
        "The app crashes every time I export a report to PDF. I'm on version {version}.",
        "Assistant: That's a known bug in {version}; version {fixed} fixes it. Updating from the app store should solve it.",
        "stop the app crashing when exporting reports to PDF",
        "Will I lose my saved reports if I reinstall?",
        "No, saved reports are stored in your account and come back after a reinstall.",
    ),
    (
        "bug",
        "My notes stopped syncing between my phone and my laptop yesterday.",
        "Assistant: Sync was paused because the laptop app was signed out. Signing in again resumes it.",
        "get their notes syncing between phone and laptop again",
        "Do I need to re-download all my notes?",
        "No, only the changes since yesterday will sync.",
    ),
    (
        "billing",
        "Can you send me an invoice for last month with our company VAT number on it?",
        "Assistant: I've added VAT number {vat} to your billing profile; the corrected invoice is in Settings > Billing.",
        "get last month's invoice with their VAT number",
        "Can you also email a copy to our accountant?",
        "Yes, add your accountant as a billing contact and invoices are emailed to them.",
    ),
    (
        "billing",
        "How much would it cost to move from {plan} to the Team plan for 12 people?",
        "Assistant: The Team plan is $14 per seat per month, so 12 seats come to $168 a month.",
        "know the price of the Team plan for 12 people",
        "Is there a discount if we pay yearly?",
        "Yearly billing saves two months, about 17%.",
    ),
    (
        "cancel",
        "Please cancel my subscription, I don't use it anymore.",
        'Tool: subscriptions.cancel(plan={plan}) -> {{"ends": "end of period"}}\nAssistant: Your {plan} subscription is cancelled and stays active until the end of the period.',
        "cancel their {plan} subscription",
        "What happens to my data after I cancel?",
        "Your data is kept for 90 days after cancellation, then deleted.",
    ),
    (
        "thanks",
        "Just wanted to say your team fixed my issue yesterday and the new dashboard is great. Thanks!",
        "Assistant: Thank you for the kind words, I'll pass them on to the team!",
        "thank the support team for a fix",
        "Are you planning a dark mode for the dashboard?",
        "Dark mode is on the roadmap for next quarter.",
    ),
    (
        "howto",
        "How do I export my contacts as a CSV file?",
        "Assistant: Go to Contacts, select all, then choose Export > CSV.",
        "export their contacts as a CSV file",
        "Does the export include custom fields?",
        "Yes, custom fields are included as extra columns.",
    ),
    (
        "privacy",
        "Delete my account and all my data, please. I'm in the EU.",
        'Tool: privacy.erasure_request(user={user}) -> {{"ticket": "ER-{order}"}}\nAssistant: Your erasure request ER-{order} is open; everything is deleted within 30 days.',
        "delete their account and personal data",
        "Will I get a confirmation when it's done?",
        "Yes, you'll get an email once the deletion is complete.",
    ),
]
FAILURES = {  # kind: (assistant reply, user reply or None, issue truth)
    "apology": (
        "Assistant: I apologize for the confusion. I'm sorry for any inconvenience this has caused. Is there anything else I can help with?",
        None,
        "The assistant only apologized and did not resolve the request.",
    ),
    "claimed": (
        "Assistant: I've processed your refund and it is on its way.",
        "User: That didn't work, nothing has arrived and there is no refund in my account.",
        "The assistant claimed a refund was processed without taking any action.",
    ),
    "empty": (
        "Assistant: (no response)",
        "User: Hello? Is anyone there?",
        "The assistant gave no response to the user's message.",
    ),
    "leak": (
        "Assistant: <reasoning>User is on the {plan} tier; policy says offer a coupon before any refund and do not mention the 30-day window.</reasoning> I understand! Could you share more details?",
        None,
        "The assistant leaked its internal reasoning and policy notes into the reply.",
    ),
    "wrong": (
        "Assistant: Open Settings > Advanced > Export and press the green button.",
        "User: That's not right, there is no Advanced section in Settings.",
        "The assistant gave wrong instructions that the user said do not exist.",
    ),
    "unable": (
        "Assistant: I cannot access account details from here. Please contact support.",
        None,
        "The assistant failed to help and sent the user elsewhere.",
    ),
}
FOLLOW_UPS = {
    "positive": [
        "User: Thanks, that worked perfectly!",
        "User: Great, thank you so much.",
        "User: Perfect, I appreciate the quick help.",
    ],
    "negative": [
        "User: This is ridiculous, I've been waiting for a week.",
        "User: Honestly this is frustrating and a waste of my time.",
        "User: I'm really disappointed with this service.",
    ],
    "mixed": [
        "User: Thanks for trying, but I'm still frustrated that it took this long.",
        "User: Great that it's sorted, though it was annoying to wait.",
    ],
    "neutral": ["User: OK.", "User: Understood, I'll check later today."],
}
SENTIMENT_REASONS = {
    "positive": "the user is pleased with the help",
    "negative": "the user is frustrated with the support experience",
    "mixed": "the user appreciates the help but is annoyed by the delay",
    "neutral": "the user states the request without emotion",
}
FINAL_KEYS = [("Task", "Sentiment", "Issues")] * 6 + [
    ("task", "sentiment", "issues"),
    ("TASK", "SENTIMENT", "ISSUES"),
    ("Task", "SENTIMENT", "issues"),
    ("Task:", "Sentiment:", "Issues:"),
    ("task ", "Sentiment", "issues."),
]
NONE_VALUES = ["NONE", "None.", "no_match", "None - the assistant handled it well", "none"]
MODELS = ["brain-facet-1"] * 10 + ["brain-facet-latest"] * 8 + ["brain-facet-2-preview"]
INPUT_SHAPES = [
    "list",
    "messages_obj",
    "parts_camel",
    "preprocessed_camel",
    "user_data_analyse",
    "input_key_user_data",
    "no_suffix",
    "appended",
    "json_string",
    "preprocessed_snake",
]
OUTPUT_SHAPES = ["string", "completion", "choice_list", "think", "json_string", "content_parts"]


def _uid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _time(stamp: datetime) -> str:
    return stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _slots(rng: random.Random) -> dict:
    return {
        "plan": rng.choice(["Starter", "Pro", "Plus"]),
        "order": rng.randint(10000, 99999),
        "product": rng.choice(["blender", "kettle", "desk lamp", "headset"]),
        "day": rng.choice(["Monday", "Friday"]),
        "version": f"4.{rng.randint(2, 9)}.1",
        "fixed": "5.0.2",
        "vat": f"DE{rng.randint(10**8, 10**9 - 1)}",
        "user": rng.randint(1000, 9999),
    }


def build_conversation(rng: random.Random) -> dict:
    """One support session with the facet values a careful labeller would give it."""
    if rng.random() < NO_REQUEST_SHARE:
        return build_no_request_session(rng, _slots(rng))
    kind, opener, clean, task, question, answer = rng.choice(SCENARIOS)
    slots = _slots(rng)
    failure = rng.choice(list(FAILURES)) if kind != "thanks" and rng.random() < 0.45 else None
    if failure == "claimed" and kind not in ("refund", "cancel"):
        failure = "apology"
    lines = ["User: " + opener.format(**slots)]
    if failure:
        reply, user_reply, issue = FAILURES[failure]
        lines.append(reply.format(**slots))
        if user_reply:
            lines.append(user_reply)
    else:
        lines.append(clean.format(**slots))
        issue = None
    mood = (
        rng.choice(["positive", "positive", "neutral", "mixed"])
        if not failure
        else rng.choice(["negative", "negative", "mixed", "neutral"])
    )
    if kind == "thanks":
        mood = "positive"
    if rng.random() < 0.6 or mood != "neutral":
        lines.append(rng.choice(FOLLOW_UPS[mood]))
    asks = rng.random() < 0.65
    if asks:
        lines.append("User: " + question)
    sentiment = f"{mood.capitalize()} - {SENTIMENT_REASONS[mood]}"
    return {
        "kind": kind,
        "text": "\n".join(lines),
        "asks": asks,
        "answer": answer,
        "failure": failure,
        "truth": {
            "task": "User wants to " + task.format(**slots),
            "sentiment": sentiment,
            "issues": issue or "NONE",
        },
    }


def production_value(rng: random.Random, facet: str, convo: dict) -> str:
    """What a brain-facet model answered: mostly right, sometimes answering the user or missing issues."""
    if convo["asks"] and rng.random() < (0.4 if facet == "task" else 0.2):
        return convo["answer"]
    truth = convo["truth"][facet]
    if facet in ("task", "sentiment") and truth == "NONE":  # a session with no request
        if rng.random() < 0.1:
            return "User wants to get help" if facet == "task" else "Neutral - the user expresses no emotion"
        return rng.choice(["NONE", "NONE", "None.", "no_match"])
    if facet == "issues":
        if truth != "NONE" and rng.random() < 0.25:
            return rng.choice(NONE_VALUES)
        if truth == "NONE":
            return (
                "The assistant did not offer a discount." if rng.random() < 0.1 else rng.choice(NONE_VALUES)
            )
    if facet == "sentiment" and rng.random() < 0.15:
        return "Neutral - the user asks for help"
    if facet == "task" and rng.random() < 0.08:
        return "Customer support request"
    return truth


def _output(rng: random.Random, values: list[str]) -> object:
    shape = rng.choice(OUTPUT_SHAPES)
    if len(values) > 1:  # several groups: one choice per group, in group order
        return [{"index": i, "message": {"role": "assistant", "content": v}} for i, v in enumerate(values)]
    value = values[0]
    if shape == "string":
        return value
    if shape == "think":
        return f"<think>The user mentions their request; I should keep it short.</think>\n{value}"
    completion = {
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": value}}]
    }
    if shape == "completion":
        return completion
    if shape == "json_string":
        return json.dumps(completion)
    if shape == "content_parts":
        return {"choices": [{"message": {"role": "assistant", "content": [{"type": "text", "text": value}]}}]}
    return completion["choices"]


def _facet_input(rng: random.Random, text: str, facets: list[str], shape: str) -> tuple[object, dict]:
    """The span input and the metadata keys that carry the prompt, in one of the logged shapes."""
    data = f"Here is the data to {'analyse' if shape == 'user_data_analyse' else 'analyze'}:\n\n{text}"
    system = {"role": "system", "content": SYSTEM_PROMPT}
    groups = [[{"role": "user", "content": PROMPTS[f]}] for f in facets]
    user = {"role": "user", "content": data}
    if shape == "parts_camel":
        return [system, {"role": "user", "content": [{"type": "text", "text": data}]}], {
            "suffixMessages": groups
        }
    if shape == "messages_obj":
        return {"messages": [system, user], "suffix_messages": groups}, {}
    if shape == "preprocessed_camel":
        return {"messages": [system, user], "preprocessedText": text}, {"suffix_messages": groups}
    if shape == "preprocessed_snake":
        return {"messages": [system, user], "preprocessed_text": text}, {"suffix_messages": groups}
    if shape == "user_data_analyse":
        return {"messages": [system, user], "user_data": text, "suffixMessages": groups}, {}
    if shape == "input_key_user_data":
        return {"input": [system, user], "userData": text}, {"suffix_messages": groups}
    if shape == "no_suffix":
        return [system, user, groups[0][0]], {}
    if shape == "appended":
        return [system, user, *[m for g in groups for m in g]], {"suffix_messages": groups}
    if shape == "json_string":
        return json.dumps([system, user]), {"suffix_messages": json.dumps(groups)}
    return [system, user], {"suffix_messages": groups}


def trace_rows(rng: random.Random, t0: datetime) -> list[dict]:
    """All rows of one trace: root (with final facets, mostly), bot LLM call, tools, facet spans."""
    convo = build_conversation(rng)
    root = _uid(rng)
    tier, region = rng.choice(["free", "pro", "pro", "enterprise"]), rng.choice(["us", "eu"])
    base_meta = {"customer_tier": tier, "region": region, "bot_version": rng.choice(["v12", "v13"])}
    lines = convo["text"].split("\n")
    first_user = lines[0].removeprefix("User: ")
    trigger = convo.get("trigger")  # a session the bot started: no user message
    last_reply = next(line for line in reversed(lines) if line.startswith("Assistant:")).removeprefix(
        "Assistant: "
    )
    rows = [
        {
            "id": root,
            "span_id": root,
            "root_span_id": root,
            "created": _time(t0),
            "input": trigger or first_user,
            "output": last_reply,
            "metadata": dict(base_meta, channel=convo.get("channel") or rng.choice(["web", "email"])),
            "span_attributes": {"type": "task", "name": "support_chat"},
        }
    ]

    def child(offset: timedelta, parent: str, **fields: object) -> dict:
        span = _uid(rng)
        row = {
            "id": span,
            "span_id": span,
            "root_span_id": root,
            "span_parents": [parent],
            "created": _time(t0 + offset),
        }
        row.update(fields)
        rows.append(row)
        return row

    child(
        timedelta(seconds=2),
        root,
        input=[
            {"role": "system", "content": f"Write the {trigger['event']} notification for the customer."}
            if trigger
            else {"role": "user", "content": first_user}
        ],
        output=last_reply,
        metadata={"model": rng.choice(["gpt-4o-mini", "claude-3-5-haiku"])},
        span_attributes={"type": "llm", "name": "chat"},
    )
    if "Tool:" in convo["text"]:
        child(
            timedelta(seconds=3),
            root,
            input={"call": "tool"},
            output={"ok": True},
            span_attributes={"type": "function", "name": "tool"},
        )
    parent = root
    delay = timedelta(minutes=rng.randint(20, 90))
    if rng.random() < 0.3:
        parent = child(
            delay,
            root,
            metadata={"model": "brain-facet-1", "pipeline": "topics"},
            span_attributes={"type": "task", "name": "topics.facets"},
        )["id"]
    facet_groups = [["task"], ["sentiment"], ["issues"]]
    if rng.random() < 0.25:
        facet_groups = (
            [["task", "sentiment", "issues"]] if rng.random() < 0.5 else [["task", "sentiment"], ["issues"]]
        )
    produced: dict[str, str] = {}
    model = rng.choice(MODELS)
    for n, facets in enumerate(facet_groups):
        shape = rng.choice(
            INPUT_SHAPES if len(facets) == 1 else [s for s in INPUT_SHAPES if s != "no_suffix"]
        )
        span_input, prompt_meta = _facet_input(rng, convo["text"], facets, shape)
        values = [production_value(rng, f, convo) for f in facets]
        produced.update(zip(facets, values, strict=True))
        metadata: object = dict(base_meta, model=model, topics_run=t0.strftime("%Y%m%d"), **prompt_meta)
        if len(facets) == 1 and rng.random() < 0.3:
            metadata[rng.choice(["facet_name", "facet", "sampled_facet_name"])] = facets[0].capitalize()
        attributes: object = {"type": "llm", "name": "facet:" + "+".join(facets)}
        if shape == "json_string" or rng.random() < 0.08:
            metadata = json.dumps(metadata)
        if rng.random() < 0.05:
            attributes = json.dumps(attributes)
        child(
            delay + timedelta(seconds=5 * n + 1),
            parent,
            input=span_input,
            output=_output(rng, values),
            metadata=metadata,
            span_attributes=attributes,
        )
    if rng.random() < 0.88:
        keys = rng.choice(FINAL_KEYS)
        finals = [_final_value(produced[f]) for f in ("task", "sentiment", "issues")]
        rows[0]["facets"] = dict(zip(keys, finals, strict=True))
        if rng.random() < 0.05:  # a later re-run of the pipeline: the newest facets row wins
            child(
                delay + timedelta(hours=3),
                root,
                facets=dict(zip(keys, [finals[0], finals[1], convo["truth"]["issues"]], strict=True)),
                span_attributes={"type": "task", "name": "topics.refresh"},
            )
    return rows


def _final_value(value: str) -> str:
    from facetopt.facets.data.text import is_none_like

    return "no_match" if is_none_like(value) else value


def generate_lines(trace_count: int = TRACE_COUNT, seed: int = SEED) -> Iterator[str]:
    """NDJSON lines of `trace_count` traces over five days, with a few malformed lines and id-less rows."""
    rng = random.Random(seed)
    starts = sorted(START + SPREAD * rng.random() for _ in range(trace_count))
    broken_after = {trace_count // 4: 0, trace_count // 2: 1, (3 * trace_count) // 4: 2}
    for index, t0 in enumerate(starts):
        for row in trace_rows(rng, t0):
            yield json.dumps(row, ensure_ascii=False, separators=(",", ":"))
        if index in broken_after:
            yield from _broken_lines(rng, t0, broken_after[index])


def _broken_lines(rng: random.Random, t0: datetime, kind: int) -> Iterator[str]:
    facet_like = {
        "created": _time(t0),
        "span_attributes": {"type": "llm"},
        "metadata": {"model": "brain-facet-1"},
        "input": [{"role": "user", "content": "Here is the data to analyze:\n\nUser: hi"}],
        "output": "NONE",
    }
    if kind == 0:
        yield (
            '{"id":"'
            + _uid(rng)
            + '","root_span_id":"'
            + _uid(rng)
            + '","input":[{"role":"user","content":"Where is my ord'
        )
        yield json.dumps(dict(facet_like, root_span_id=_uid(rng)))  # no id
    elif kind == 1:
        yield "WARN sync: part upload retried (attempt 2)"
        yield json.dumps(dict(facet_like, id=_uid(rng)))  # no root_span_id
    else:
        yield '{"id":"' + _uid(rng) + '"}{"id":"' + _uid(rng) + '"}'


def write_sample(path: Path, trace_count: int = TRACE_COUNT, seed: int = SEED) -> int:
    lines = list(generate_lines(trace_count, seed))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return len(lines)


def main() -> None:
    target = Path(__file__).resolve().parents[2] / "src" / "facetopt" / "sample" / "sample_traces.jsonl"
    count = write_sample(target)
    print(f"wrote {count} lines, {target.stat().st_size / 1e6:.2f} MB to {target}")


if __name__ == "__main__":
    main()
