"""Sessions of the bundled sample with no real user request, as production logs have them.

A bot-initiated notification nobody answers, a user who only says "hi" or "test", a chat widget
opened and sent empty, an automated health check. Their Task and Sentiment are NONE (nothing asked,
nothing expressed); Issues is NONE unless the assistant never replied.
"""

from __future__ import annotations

import random

WELCOME = "Assistant: Hi! I'm Acme's support assistant. How can I help you today?"
NO_REPLY = "Assistant: (no response)"
NO_REPLY_ISSUE = "The assistant gave no response to the user's message."
# event name: the message the bot sends on its own
NOTIFICATIONS = {
    "order_shipped": "Good news: order #{order} has shipped and arrives on {day}. Track it under Orders.",
    "renewal_reminder": "Reminder: your {plan} plan renews in 3 days. Nothing to do if you want to keep it.",
    "invoice_ready": "Your invoice for last month is ready in Settings > Billing.",
    "maintenance": "Scheduled maintenance tonight, 01:00-02:00 UTC: the app may be briefly unavailable.",
}
GREETINGS = ["hi", "Hi", "hello", "Hello", "hey there", "Good morning", "hi hi", "Hello?"]
TEST_MESSAGES = ["test", "testing", "testing 123", "test test"]
HEALTH_CHECK = "ping"
# kind, weight
KINDS = [("notification", 7), ("greeting", 6), ("test", 3), ("empty", 2), ("health_check", 2)]


def build_no_request_session(rng: random.Random, slots: dict) -> dict:
    """One session without a request, shaped like `generate.build_conversation`'s result.

    Extra keys: `trigger` (what started a session with no user message) and `channel`.
    """
    kind = rng.choices([k for k, _ in KINDS], weights=[w for _, w in KINDS])[0]
    session: dict = {"trigger": None, "channel": None}
    message = ""
    if kind == "notification":
        event = rng.choice(list(NOTIFICATIONS))
        lines = ["Assistant: " + NOTIFICATIONS[event].format(**slots)]
        session.update(trigger={"event": event, "user": slots["user"]}, channel="push")
    else:
        message = {
            "greeting": rng.choice(GREETINGS),
            "test": rng.choice(TEST_MESSAGES),
            "empty": "",
            "health_check": HEALTH_CHECK,
        }[kind]
        lines = [f"User: {message}"]
        if kind == "health_check":
            session["channel"] = "synthetic-monitor"
        # the bot sometimes never answers a greeting (a timeout): a real issue in a session with no task
        lines.append(NO_REPLY if kind == "greeting" and rng.random() < 0.2 else WELCOME)
    unanswered = NO_REPLY in lines
    session.update(
        kind="no_request_" + kind,
        text="\n".join(lines),
        asks=message.endswith("?"),
        answer="Hello! How can I help you today?",
        failure="empty" if unanswered else None,
        truth={"task": "NONE", "sentiment": "NONE", "issues": NO_REPLY_ISSUE if unanswered else "NONE"},
    )
    return session
