"""Errors facetopt reports to the user as one `error:` line plus a `hint:`, and the redaction that
keeps secrets out of them (and out of runner logs and recorded rows)."""

from __future__ import annotations

import re
from collections.abc import Sequence


class FacetoptError(Exception):
    """A handled failure: the CLI prints `error: <message>` and `hint: <hint>` and exits."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None, exit_code: int | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        if exit_code is not None:
            self.exit_code = exit_code

    def to_dict(self) -> dict:
        return {"message": self.message, "hint": self.hint, "exit_code": self.exit_code}


class ConfigError(FacetoptError):
    """A setting is missing or invalid."""


class InputError(FacetoptError):
    """A file, flag value or SQL fragment the user gave cannot be used."""


class SourceError(FacetoptError):
    """The span source (NDJSON export or Braintrust project) cannot be read."""


class ModelError(FacetoptError):
    """A model endpoint cannot be reached or keeps failing."""


class BraintrustError(FacetoptError):
    """The Braintrust API refused or failed a request."""


class UploadVerificationError(BraintrustError):
    """Rows written to a dataset did not all come back on read-back."""


class PromptFileError(FacetoptError):
    """The prompt file cannot be loaded or is invalid."""


class EvalRunError(FacetoptError):
    """The eval runner failed."""


class NotFoundError(FacetoptError):
    """A named dataset, experiment, run or project does not exist."""


class Interrupted(FacetoptError):
    exit_code = 130


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
