"""`.env.example` shows each default as it really is: a commented `NAME=value` line whose value is
not the setting's default would make a user believe something false (as `SPLIT=validation` did)."""

from __future__ import annotations

import re
from pathlib import Path

from facetopt.settings import Settings

EXAMPLE = Path(__file__).resolve().parents[1] / ".env.example"
LINE = re.compile(r"^#\s*([A-Z][A-Z0-9_]*)=(\S[^#]*?)?\s*(#.*)?$")


def _defaults() -> dict[str, object]:
    by_name: dict[str, object] = {}
    for field in Settings.model_fields.values():
        alias = field.validation_alias
        for name in getattr(alias, "choices", [alias] if isinstance(alias, str) else []):
            by_name[str(name)] = field.default
    return by_name


def test_every_default_shown_in_env_example_is_the_real_default() -> None:
    defaults = _defaults()
    checked = 0
    for line in EXAMPLE.read_text().splitlines():
        match = LINE.match(line)
        if not match or match.group(1) not in defaults:
            continue
        shown, default = (match.group(2) or "").strip(), defaults[match.group(1)]
        if not shown:
            continue  # no value shown: the comment (if any) describes the default
        same = shown == str(default) or (isinstance(default, float) and float(shown) == default)
        assert same, f"{match.group(1)}: .env.example shows {shown!r}, the default is {default!r}"
        checked += 1
    assert checked >= 10


def test_an_unset_split_means_every_split() -> None:
    assert Settings().split is None
    assert "FACET_OPTIMIZER_SPLIT=validation" not in EXAMPLE.read_text()
