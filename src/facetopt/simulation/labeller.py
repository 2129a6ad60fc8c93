"""The simulated facet value: what a strong labeller, and a weaker brain-facet model, would answer.

Everything here is a pure function of the request text (no random state), so a simulated run is
reproducible byte for byte. Values are read from the trace, never copied from a production output:

- issues: the first problem found in the trace, described in one sentence, else `NONE`;
- sentiment: a lexicon over the user's turns, `<Label> - <reason>`;
- task: `User wants to <verb phrase from the first user request>`;
- sentiment and task are `NONE` when the user says nothing: no user turn, or only greetings,
  test words ("test", "ping") and numbers (a session with no request in it);
- any other facet: a short phrase from the trace around a word of the prompt, else `NONE`.

The facet model (`brain-facet-*`) gives the same value except for two documented failures, see
`simulated_facet_model`.

Planted labelling mistakes (`labeller_reply`): asked in the `dataset create` layout (facet prompt
last), the labeller gets about one row in MISTAKE_EVERY wrong, chosen by a hash of the facet kind
and the trace: a positive value becomes `NONE`, a `NONE` becomes a plausible positive (issues,
task, sentiment), and a sentiment label is swapped. Asked in the audit layout (the facet prompt
first, between `<facet_prompt>` tags) it answers `labeller_value`, so `dataset audit` finds them.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from facetopt.facets.data.text import decode_jsonish

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


def texts_of(turns: list[Turn], role: str) -> list[str]:
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
    assistant = texts_of(turns, "assistant")
    joined = "\n".join(assistant)
    if _LEAK_RE.search(joined):
        return "The assistant leaked its internal reasoning into the reply to the user."
    if any(_EMPTY_REPLY_RE.match(text) for text in assistant) or (texts_of(turns, "user") and not assistant):
        return "The assistant gave no response to the user's message."
    if _REFUND_CLAIM_RE.search(joined) and not any(t.role == "tool" for t in turns):
        return "The assistant claimed a refund was processed without taking any action."
    if any(_COMPLAINT_RE.search(text) for text in _user_replies(turns)):
        return "The assistant gave an answer the user said was wrong or did not work."
    failure = _FAILURE_RE.search(joined)
    if failure is None:
        return "NONE"
    if failure.group(0).lower().startswith("i"):
        return "The assistant said it could not help and left the request unresolved."
    if "apologi" in failure.group(0).lower():
        return "The assistant apologised instead of addressing the user's problem."
    return "The assistant hit an error and did not complete the user's request."


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


# Words that carry no request and no feeling: a user who only greets or tests the bot says nothing.
_EMPTY_WORDS = frozenset("hi hiya hello hey yo greetings there test testing ping".split())
_DAYTIME_GREETING_RE = re.compile(r"\bgood (?:morning|afternoon|evening)\b", re.IGNORECASE)


def user_says_nothing(turns: list[Turn]) -> bool:
    """True when no user turn has a word beyond greetings, test words and numbers (or none at all)."""
    for text in texts_of(turns, "user"):
        words = re.findall(r"[a-z0-9']+", _DAYTIME_GREETING_RE.sub(" ", text).lower())
        if any(word not in _EMPTY_WORDS and not word.isdigit() for word in words):
            return False
    return True


def sentiment_value(turns: list[Turn]) -> str:
    users = texts_of(turns, "user")
    if user_says_nothing(turns):
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
# (prefix, replacement): stripped repeatedly from the start of the user's first request
_REWRITES = tuple(
    (prefix, replacement)
    for replacement, prefixes in (
        ("", "please |i'm looking to |is it possible to |i just wanted to |i wanted to |just |wanted to "),
        ("", "i want to |i'd like to |i would like to |i need to |i'm trying to |i am trying to "),
        ("", "help me |how do i |how can i |how to |can i |could i "),
        ("know ", "tell me |do you know |i wonder |i'm wondering "),
        ("get ", "i need |i want |i'd like |i would like "),
    )
    for prefix in prefixes.split("|")
)
_ASSISTANT_ACTOR = (
    "can you ",
    "could you ",
    "would you ",
)  # "can you send me X" -> "have the assistant send ..."
_QUESTION_WORDS = frozenset("what where when why who which is are does do did will should how".split())
_STATEMENT_STARTS = frozenset(
    "i i'm i've my the it it's this our we there your a an they their he she someone".split()
)
_PRONOUNS = {
    "my": "their",
    "me": "them",
    "i": "they",
    "i'm": "they are",
    "i've": "they have",
    "mine": "theirs",
}
_PRONOUNS |= {"myself": "themselves", "our": "their", "we": "they", "us": "them"}
_DANGLING = frozenset("and or but the a an to of with for because so".split())


def _first_request(turns: list[Turn]) -> str:
    users = [t for t in texts_of(turns, "user") if t.strip()]
    if not users:
        return ""
    sentences = [_GREETING_RE.sub("", s).strip() for s in re.split(r"(?<=[.?!])\s+|\n+", users[0])]
    sentences = [s for s in sentences if s]
    sentence = next((s for s in sentences if len(s.split()) >= 2), sentences[0] if sentences else "")
    return re.split(r"[,;:]\s", sentence.rstrip(".?! "), maxsplit=1)[0].strip()


def task_phrase(turns: list[Turn]) -> str:
    """A verb phrase for the user's first request: "reset their password", "know where their order is"."""
    phrase = _first_request(turns)
    phrase = phrase[:1].lower() + phrase[1:]
    if not phrase:
        return "get help"
    assistant_acts = False
    changed = True
    while changed:
        changed = False
        for prefix in _ASSISTANT_ACTOR:
            if phrase.lower().startswith(prefix):
                phrase, changed, assistant_acts = phrase[len(prefix) :], True, True
        for prefix, replacement in _REWRITES:
            if phrase.lower().startswith(prefix):
                phrase, changed = replacement + phrase[len(prefix) :], True
                assistant_acts = assistant_acts and not replacement and prefix != "help me "
    first = phrase.split()[0].lower() if phrase.split() else ""
    if first in _QUESTION_WORDS:
        phrase = "know " + phrase
    elif first in _STATEMENT_STARTS:  # a statement of a problem, not a request
        phrase = "get help because " + phrase
    elif assistant_acts and first not in ("know", "get"):
        phrase = "have the assistant " + phrase
    words = [_PRONOUNS.get(w.lower(), w) for w in phrase.split()][:14]
    while words and words[-1].lower() in _DANGLING:
        words.pop()
    return " ".join(words) or "get help"


def task_value(turns: list[Turn]) -> str:
    return "NONE" if user_says_nothing(turns) else f"User wants to {task_phrase(turns)}"


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


# -- planted mistakes ------------------------------------------------------------------------------

MISTAKE_EVERY = 12
_SENTIMENT_SWAPS = {"Positive": "Neutral", "Negative": "Neutral", "Mixed": "Negative", "Neutral": "Positive"}
_FALSE_POSITIVES = {
    "issues": "The assistant gave an answer the user said was wrong or did not work.",
    "task": "User wants to get help",
    "sentiment": "Neutral - the user states a request without expressing emotion",
}


def is_planted_mistake(trace: str, prompt: str) -> bool:
    digest = hashlib.sha256(f"label-mistake\0{facet_kind(prompt)}\0{trace}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % MISTAKE_EVERY == 0


def mistaken(value: str, kind: str) -> str:
    """The wrong answer the labeller gives instead of `value` on a planted-mistake row."""
    if value == "NONE":
        return _FALSE_POSITIVES.get(kind, value)
    if kind == "sentiment":
        label, _, reason = value.partition(" - ")
        if label in _SENTIMENT_SWAPS:
            return f"{_SENTIMENT_SWAPS[label]} - {reason}"
    return "NONE"


def labeller_reply(trace: str, prompt: str) -> str:
    """What the simulated labeller answers in the `dataset create` layout: the value, except on a
    planted-mistake row."""
    value = labeller_value(trace, prompt)
    return mistaken(value, facet_kind(prompt)) if is_planted_mistake(trace, prompt) else value
