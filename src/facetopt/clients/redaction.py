"""Keeping secrets out of what facetopt shows or keeps: error messages, runner logs."""

from __future__ import annotations

import re
from collections.abc import Sequence

MASK = "***"
_CREDENTIAL_RE = re.compile(
    r"(Bearer\s+)\S+|\b(sk-[A-Za-z0-9_-]{6,})|(?<=://)()[^/\s@:]*:[^/\s@]+@", re.IGNORECASE
)


def redact(text: str, secrets: Sequence[str | None]) -> str:
    """`text` with every secret value replaced by `***` (values shorter than 4 characters are left)."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, MASK)
    return text


def redact_credentials(text: str, secrets: Sequence[str | None]) -> str:
    """`redact`, plus anything shaped like a credential: bearer tokens, `sk-...` keys and the
    `user:password@` of a URL."""
    return _CREDENTIAL_RE.sub(
        lambda m: MASK + "@" if m.group(3) is not None else (m.group(1) or "") + MASK, redact(text, secrets)
    )
