"""The simulated facet value: what a strong labeller, and a weaker brain-facet model, would answer.

Everything here is a pure function of the request text (no random state), so a simulated run is
reproducible byte for byte. Values are read from the trace, never copied from a production output:

- issues: the first problem found in the trace, described in one sentence, else `NONE`;
- sentiment: a lexicon over the user's turns, `<Label> - <reason>`;
- task: `User wants to <verb phrase from the first user request>`;
- any other facet: a short phrase from the trace around a word of the prompt, else `NONE`.

The facet model (`brain-facet-*`) gives the same value except for two documented failures, see
`facet_model_value`.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from facetopt.facets.text import decode_jsonish, is_none_like

# -- trace turns -----------------------------------------------------------------------------------

_ROLE_LINE_RE = re.compile(
    r"^[\s#*\[>_-]*(user|human|customer|assistant|ai|bot|agent|system|tool|function)"
    r"(?:\s+(?:message|call|result|response|reply))?[\]*_\s]*:\s?(.*)$",
    re.IGNORECASE,
)
_ROLE_ALIASES = {
    "human": "user",
    "customer": "user",
    "ai": "assistant",
    "bot": "assistant",
    "agent": "assistant",
    "function": "tool",
}


@dataclass(frozen=True)
class Turn:
    role: str  # user | assistant | tool | system
    text: str


def parse_turns(trace: str) -> list[Turn]:
    """Split a preprocessed trace into turns: `User: ...` style lines, or a JSON list of messages.

    A trace with no recognisable role line is one user turn (the whole text).
    """
    decoded = decode_jsonish(trace.strip())
    if isinstance(decoded, list) and all(isinstance(m, dict) and "role" in m for m in decoded):
        return [
            Turn(
                _ROLE_ALIASES.get(str(m["role"]).lower(), str(m["role"]).lower()), _as_text(m.get("content"))
            )
            for m in decoded
        ]
    turns: list[Turn] = []
    role: str | None = None
    lines: list[str] = []
    for line in trace.splitlines():
        match = _ROLE_LINE_RE.match(line)
        if match:
            if role is not None:
                turns.append(Turn(role, "\n".join(lines).strip()))
            word = match.group(1).lower()
            role, lines = _ROLE_ALIASES.get(word, word), [match.group(2)]
        elif role is not None:
            lines.append(line)
    if role is not None:
        turns.append(Turn(role, "\n".join(lines).strip()))
    return turns or ([Turn("user", trace.strip())] if trace.strip() else [])


def _as_text(content: object) -> str:
    if isinstance(content, str):
        return content.strip()
    if isinstance(content, list):
        return "\n".join(str(p.get("text", "")) if isinstance(p, dict) else str(p) for p in content).strip()
    return "" if content is None else str(content)


def _texts(turns: list[Turn], role: str) -> list[str]:
    return [t.text for t in turns if t.role == role]


def _user_replies(turns: list[Turn]) -> list[str]:
    """User turns that come after an assistant turn: where a complaint is about the assistant."""
    seen_assistant, replies = False, []
    for turn in turns:
        if turn.role == "assistant":
            seen_assistant = True
        elif turn.role == "user" and seen_assistant:
            replies.append(turn.text)
    return replies


# -- facet kind ------------------------------------------------------------------------------------


def facet_kind(prompt: str) -> str:
    """issues | sentiment | task | generic, from the facet prompt's wording."""
    text = prompt.lower()
    if "no response" in text or "leaked reasoning" in text:
        return "issues"
    if all(word in text for word in ("negative", "neutral", "positive", "mixed")) or "sentiment" in text:
        return "sentiment"
    if re.search(r"\bissues?\b", text):
        return "issues"
    if "user wants to" in text or "overall request or goal" in text or re.search(r"\btask\b", text):
        return "task"
    return "generic"


# -- the labeller's value (the truth) --------------------------------------------------------------

_LEAK_RE = re.compile(
    r"</?reasoning>|</?think>|\bas an ai\b|chain of thought|internal (?:note|reasoning)|scratchpad"
    r"|let me think step by step",
    re.IGNORECASE,
)
_EMPTY_REPLY_RE = re.compile(r"^\s*(?:|\(no response\)|\[no response\]|<empty>|\(empty\))\s*$", re.IGNORECASE)
_REFUND_CLAIM_RE = re.compile(
    r"refund (?:has been|was|is being|is) (?:processed|issued|initiated|approved)"
    r"|\bi(?:'ve| have) (?:processed|issued|initiated|approved) (?:a|your|the) refund",
    re.IGNORECASE,
)
_COMPLAINT_RE = re.compile(
    r"that'?s (?:wrong|not right|incorrect)|\b(?:doesn'?t|does not|didn'?t|did not) work|not working"
    r"|still (?:broken|not working|doesn'?t)|you(?:'re| are) wrong|not what i asked|\buseless\b"
    r"|makes no sense",
    re.IGNORECASE,
)
_FAILURE_RE = re.compile(
    r"\bi (?:can'?t|cannot|am unable to|'m unable to|am not able to)\b|\ban error (?:has )?occurred\b"
    r"|something went wrong|apologi[sz]e for the (?:error|confusion|mistake)",
    re.IGNORECASE,
)


def issues_value(turns: list[Turn]) -> str:
    assistant = _texts(turns, "assistant")
    joined = "\n".join(assistant)
    if _LEAK_RE.search(joined):
        return "The assistant leaked its internal reasoning into the reply to the user."
    if any(_EMPTY_REPLY_RE.match(text) for text in assistant) or (_texts(turns, "user") and not assistant):
        return "The assistant gave no response to the user's message."
    if _REFUND_CLAIM_RE.search(joined) and not any(t.role == "tool" for t in turns):
        return "The assistant claimed a refund was processed without taking any action."
    if any(_COMPLAINT_RE.search(text) for text in _user_replies(turns)):
        return "The assistant gave an answer the user said was wrong or did not work."
    if _FAILURE_RE.search(joined):
        return f"The assistant failed to help the user {task_phrase(turns)}."
    return "NONE"


_POSITIVE_RE = re.compile(
    r"\b(?:thanks|thank you|great|perfect|awesome|love|helpful|appreciate\w*|excellent|amazing|wonderful"
    r"|fantastic|glad)\b"
    r"|\b(?:works|worked) (?:now|perfectly|great)\b",
    re.IGNORECASE,
)
_NEGATIVE_RE = re.compile(
    r"\b(?:frustrat\w*|annoy\w*|terrible|awful|useless|angry|ridiculous|hate|disappointed|worst|horrible|unacceptable|wrong)\b"
    r"|\b(?:doesn'?t|does not|didn'?t) work\b|not working|waste of (?:my )?time",
    re.IGNORECASE,
)


def sentiment_value(turns: list[Turn]) -> str:
    users = _texts(turns, "user")
    if not users:
        return "NONE"
    text = "\n".join(users)
    positive, negative = _POSITIVE_RE.search(text), _NEGATIVE_RE.search(text)
    if positive and negative:
        bad, good = negative.group(0).lower(), positive.group(0).lower()
        return f'Mixed - the user is frustrated ("{bad}") but also appreciative ("{good}")'
    if negative:
        return f'Negative - the user expresses frustration ("{negative.group(0).lower()}")'
    if positive:
        return f'Positive - the user expresses appreciation ("{positive.group(0).lower()}")'
    if "?" in text:
        return "Neutral - the user asks a question without expressing emotion"
    return "Neutral - the user states a request without expressing emotion"


_GREETING_RE = re.compile(
    r"^(?:hi|hello|hey|good (?:morning|afternoon|evening)|greetings)(?: there)?\b[\s,.!]*", re.IGNORECASE
)
_POLITE_PREFIXES = (
    "please ",
    "can you ",
    "could you ",
    "would you ",
    "can i ",
    "could i ",
    "i want to ",
    "i'd like to ",
    "i would like to ",
    "i need to ",
    "i'm trying to ",
    "i am trying to ",
    "i wanna ",
    "help me ",
    "how do i ",
    "how can i ",
    "how to ",
    "is it possible to ",
    "i'm looking to ",
)
_KNOW_PREFIXES = ("tell me ", "do you know ", "i wonder ", "i'm wondering ")
_WANT_OBJECT_PREFIXES = ("i need ", "i want ", "i'd like ", "i would like ")
_QUESTION_WORDS = (
    "what",
    "where",
    "when",
    "why",
    "who",
    "which",
    "is",
    "are",
    "does",
    "do",
    "did",
    "will",
    "should",
    "how",
)
_PRONOUNS = {
    "my": "their",
    "me": "them",
    "i": "they",
    "i'm": "they are",
    "mine": "theirs",
    "myself": "themselves",
    "our": "their",
    "we": "they",
    "us": "them",
}


def task_phrase(turns: list[Turn]) -> str:
    """A verb phrase for the user's first request: "reset their password", "know where their order is"."""
    users = [t for t in _texts(turns, "user") if t.strip()]
    if not users:
        return "get help"
    sentences = [s.strip() for s in re.split(r"(?<=[.?!])\s+|\n+", users[0]) if s.strip()]
    sentences = [_GREETING_RE.sub("", s).strip() for s in sentences]
    sentence = next((s for s in sentences if len(s.split()) >= 2), sentences[0] if sentences else "")
    phrase = sentence.rstrip(".?! ").strip()
    phrase = phrase[:1].lower() + phrase[1:]
    changed = True
    while changed:
        changed = False
        for prefix in _POLITE_PREFIXES:
            if phrase.lower().startswith(prefix):
                phrase, changed = phrase[len(prefix) :], True
    for prefix in _WANT_OBJECT_PREFIXES:
        if phrase.lower().startswith(prefix):
            phrase = "get " + phrase[len(prefix) :]
    for prefix in _KNOW_PREFIXES:
        if phrase.lower().startswith(prefix):
            phrase = "know " + phrase[len(prefix) :]
    if phrase.split()[:1] and phrase.split()[0].lower() in _QUESTION_WORDS:
        phrase = "know " + phrase
    words = [_PRONOUNS.get(w.lower(), w) for w in phrase.split()][:12]
    return " ".join(words).rstrip(",;:") or "get help"


def task_value(turns: list[Turn]) -> str:
    return f"User wants to {task_phrase(turns)}" if _texts(turns, "user") else "NONE"


_STOPWORDS = frozenset(
    "about above after again against facet value values return output conversation trace traces assistant "
    "user users there their these those which while would could should short phrase summary extract "
    "extracting mention mentioned answer reply respond response single string below following given other "
    "where whether words write".split()
)


def generic_value(turns: list[Turn], prompt: str) -> str:
    """A short phrase around the first prompt word (5+ letters) that the trace mentions, else NONE."""
    trace_text = "\n".join(t.text for t in turns if t.role in ("user", "assistant"))
    lowered = trace_text.lower()
    for word in dict.fromkeys(re.findall(r"[a-z]{5,}", prompt.lower())):
        if word in _STOPWORDS:
            continue
        position = lowered.find(word)
        if position >= 0:
            window = trace_text[position:].split()[:6]
            return " ".join(window).strip(" ,.;:!?\"'").capitalize()
    return "NONE"


def labeller_value(trace: str, prompt: str) -> str:
    turns = parse_turns(trace)
    kind = facet_kind(prompt)
    if kind == "issues":
        return issues_value(turns)
    if kind == "sentiment":
        return sentiment_value(turns)
    if kind == "task":
        return task_value(turns)
    return generic_value(turns, prompt)


# -- the facet model under evaluation --------------------------------------------------------------

# A "data boundary" tells the model the conversation is data, not a request, and to return only the value.
BOUNDARY_PATTERNS = (
    r"\bis data\b",
    r"\bas data\b",
    r"\bnot a request\b",
    r"\bnot requests\b",
    r"\bdo not answer\b",
    r"\bdon'?t answer\b",
    r"\bdo not respond to\b",
    r"\bnot instructions?\b",
    r"\bnot an instruction\b",
    r"\bonly (?:return|output)\b",
    r"\b(?:return|output|respond with|reply with) only\b",
)
_BOUNDARY_RE = re.compile("|".join(BOUNDARY_PATTERNS), re.IGNORECASE)
ANSWER_RATE_WITHOUT_BOUNDARY = 60  # percent of traces ending in a user question
ANSWER_RATE_WITH_BOUNDARY = 5
NOISE_RATE = 6  # percent of (trace, prompt) pairs whose borderline decision flips
THINK_RATE = 20  # percent of replies that open with a <think> block (callers must strip it)


def has_data_boundary(prompt: str) -> bool:
    return _BOUNDARY_RE.search(prompt) is not None


def percent(text: str) -> int:
    """A stable number in [0, 100) for a text: sha256 as an integer, modulo 100."""
    return int(hashlib.sha256(text.encode("utf-8")).hexdigest(), 16) % 100


def answers_the_user(trace: str, prompt: str, instructions: str = "") -> bool:
    """True when the facet model replies to the user's last question instead of producing the value.

    That happens when the trace's last user turn ends with "?" and sha256(trace) % 100 falls under
    ANSWER_RATE_WITHOUT_BOUNDARY, or under ANSWER_RATE_WITH_BOUNDARY when the facet prompt or the
    wrapper instructions (never the trace) hold a data-boundary statement (BOUNDARY_PATTERNS).
    """
    users = _texts(parse_turns(trace), "user")
    if not users or not users[-1].rstrip().endswith("?"):
        return False
    bounded = has_data_boundary(prompt) or has_data_boundary(instructions)
    return percent(trace) < (ANSWER_RATE_WITH_BOUNDARY if bounded else ANSWER_RATE_WITHOUT_BOUNDARY)


def facet_model_value(trace: str, prompt: str, instructions: str = "") -> str:
    """The labeller's value, except (1) it answers the user (see `answers_the_user`) and (2) a noise flip.

    The noise: when sha256("noise:" + trace + prompt) % 100 < NOISE_RATE, a positive value becomes
    `NONE` and a none-like one becomes a vague positive for the facet's kind.
    """
    turns = parse_turns(trace)
    if answers_the_user(trace, prompt, instructions):
        question = _texts(turns, "user")[-1].strip().splitlines()[-1][:160]
        return (
            f'Sure! Happy to help with your question ("{question}"). Here is what you can do: check the '
            "details in your account settings, follow the steps shown there, and contact support if anything "
            "is still unclear. Let me know if there is anything else I can help with!"
        )
    value = labeller_value(trace, prompt)
    if percent("noise:" + trace + prompt) < NOISE_RATE:
        if not is_none_like(value):
            return "NONE"
        return {
            "issues": "The assistant's response could have been more detailed.",
            "sentiment": "Neutral - the user shows no clear emotion",
            "task": "User wants help",
        }.get(facet_kind(prompt), "General conversation")
    return value


def with_think_block(trace: str, prompt: str, value: str) -> str:
    """Some facet-model replies open with a reasoning block, as reasoning models do."""
    if percent("think:" + trace + prompt) < THINK_RATE:
        return f"<think>Reading the conversation to extract the {facet_kind(prompt)} facet.</think>\n{value}"
    return value
