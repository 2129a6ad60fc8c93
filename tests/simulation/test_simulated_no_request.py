"""The simulated labeller on sessions with no request: Task and Sentiment are NONE when the user says nothing."""

from __future__ import annotations

import pytest

from facetopt.simulation import facet_model as sim
from facetopt.simulation.transport import simulate
from tests.sample.generate import PROMPTS

WELCOME = "Assistant: Hi! How can I help you today?"


def label(trace: str, facet: str, model: str = "gpt-5.4") -> str:
    """The facet value; the labeller is asked in the audit layout (prompt first, no planted mistakes)."""
    data = [
        {"role": "system", "content": "You analyze support conversations."},
        {"role": "user", "content": f"Here is the data to analyze:\n\n{trace}"},
    ]
    if model.startswith("brain-facet"):
        messages = [*data, {"role": "user", "content": PROMPTS[facet]}]
    else:
        messages = [{"role": "user", "content": f"<facet_prompt>{PROMPTS[facet]}</facet_prompt>"}, *data]
    status, body = simulate("POST", "/v1/chat/completions", {"model": model, "messages": messages})
    assert status == 200
    return body["choices"][0]["message"]["content"].split("</think>")[-1].strip()


@pytest.mark.parametrize(
    "trace",
    [
        f"User: hi\n{WELCOME}",
        f"User: Good morning!\n{WELCOME}",
        f"User: testing 123\n{WELCOME}",
        f"User: ping\n{WELCOME}",
        f"User: \n{WELCOME}",
        "Assistant: Your invoice for last month is ready in Settings > Billing.",
        f"User: hello\n{WELCOME}\nUser: hello?? test",
    ],
)
def test_a_user_who_says_nothing_has_no_task_and_no_sentiment(trace: str) -> None:
    assert label(trace, "task") == "NONE"
    assert label(trace, "sentiment") == "NONE"
    assert label(trace, "issues") == "NONE"


def test_a_greeting_before_a_request_still_has_its_task_and_sentiment() -> None:
    trace = f"User: Hi, I can't log in to my account.\n{WELCOME}\nUser: This is ridiculous."
    assert label(trace, "task") == "User wants to get help because they can't log in to their account"
    assert label(trace, "sentiment").startswith("Negative - ")


def test_a_greeting_followed_by_thanks_expresses_a_feeling() -> None:
    trace = f"User: hi\n{WELCOME}\nUser: thanks, all good now"
    assert label(trace, "sentiment").startswith("Positive - ")


def test_an_unanswered_greeting_is_still_an_issue() -> None:
    trace = "User: Hello\nAssistant: (no response)"
    assert label(trace, "issues") == "The assistant gave no response to the user's message."
    assert label(trace, "task") == label(trace, "sentiment") == "NONE"


def test_the_facet_model_still_answers_a_bare_greeting_question_without_a_boundary() -> None:
    """The "answers the user" rule is unchanged: a last user turn ending in "?" can be answered."""
    traces = [f"User: hi\nAssistant: Hi! Chat {i} is open.\nUser: hello?" for i in range(60)]
    answered = [t for t in traces if sim.answers_the_user(t, PROMPTS["task"])]
    assert 15 <= len(answered) <= 50
    assert label(answered[0], "task", model="brain-facet-1").startswith("Sure!")
    assert all(label(t, "task") == "NONE" for t in answered)  # the labeller is never fooled
