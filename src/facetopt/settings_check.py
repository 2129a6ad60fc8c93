"""A bad setting named where it came from: the flag, or the variable and the environment or the
`.env` file, with the value given and what is accepted (from the field's own constraints, so a new
numeric setting is described without a line here)."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from pydantic import AliasChoices
from pydantic.fields import FieldInfo

from facetopt.errors import InputError

# settings whose flag is not `--` + the field's name with dashes
FLAG_NAMES = {
    "ground_truth_concurrency": "--concurrency",
    "source_models": "--source-model",
    "source_files": "--source-file",
    "use_cache": "--no-cache",
}

HINTS = {
    "validation_fraction": "0.2 keeps a fifth of each facet and bucket for validation",
    "test_fraction": "0 (the default) keeps no test split; 0.1 holds out a tenth of each facet and bucket",
    "max_cost": "dollars for the command, e.g. 5",
    "backend": "braintrust or local",
    "split": "train, validation, test (the holdout), a comma list of them, or all",
    "request_timeout": "seconds, e.g. 120",
    "call_deadline": "seconds, e.g. 600",
    "flush_deadline": "seconds, e.g. 300",
}


def variable_names(info: FieldInfo) -> list[str]:
    alias = info.validation_alias
    if isinstance(alias, AliasChoices):
        return [str(choice) for choice in alias.choices]
    return [alias] if isinstance(alias, str) else []


def _number_type(annotation: Any) -> type | None:
    for kind in (annotation, *get_args(annotation)):
        if kind in (int, float):
            return kind
    return None


def _bounds(info: FieldInfo) -> dict[str, float]:
    found: dict[str, float] = {}
    for item in info.metadata:
        for name in ("ge", "gt", "le", "lt"):
            value = getattr(item, name, None)
            if isinstance(value, int | float):
                found[name] = value
    return found


def accepted(info: FieldInfo) -> str | None:
    """What the setting accepts, in words: "a number in [0, 1)", "a whole number, 1 or more"."""
    annotation = info.annotation
    choices = [a for a in (annotation, *get_args(annotation)) if get_origin(a) is Literal]
    if choices:
        return "one of " + ", ".join(str(c) for c in get_args(choices[0]))
    kind = _number_type(annotation)
    if kind is None:
        return "true or false" if bool in (annotation, *get_args(annotation)) else None
    noun = "a whole number" if kind is int else "a number"
    b = _bounds(info)
    if ("ge" in b or "gt" in b) and ("le" in b or "lt" in b):
        low = f"[{b['ge']:g}" if "ge" in b else f"({b['gt']:g}"
        high = f"{b['le']:g}]" if "le" in b else f"{b['lt']:g})"
        return f"in {low}, {high}"
    if "ge" in b:
        return f"{noun}, {b['ge']:g} or more"
    if "gt" in b:
        return f"{noun} above {b['gt']:g}"
    return f"a finite {noun[2:]}"


def is_bounded_number(info: FieldInfo) -> bool:
    """Every numeric setting must declare its range (tests/test_settings.py checks all of them)."""
    return _number_type(info.annotation) is None or bool(_bounds(info))


def _dotenv(env_file: Path | None) -> dict[str, str | None]:
    if env_file is None or not env_file.is_file():
        return {}
    from dotenv import dotenv_values

    return {k.upper(): v for k, v in dotenv_values(env_file).items()}


def source_of(
    field: str,
    info: FieldInfo,
    given: Mapping[str, Any],
    env_file: Path | None,
    environ: Mapping[str, str] | None = None,
) -> tuple[str, Any, str]:
    """(what the message starts with, the value as given, how to change it) for `field`: the flag
    (`--max-cost`), else the variable with its value and its place (`FACET_OPTIMIZER_MAX_COST=-1
    (in .env)`)."""
    if field in given:
        flag = FLAG_NAMES.get(field, "--" + field.replace("_", "-"))
        return flag, given[field], f"pass another value to {flag}"
    environ = os.environ if environ is None else environ
    upper = {k.upper(): v for k, v in environ.items() if v != ""}
    from_file = _dotenv(env_file)
    for name in variable_names(info):
        if name.upper() in upper:
            shown = f"{name.upper()}={upper[name.upper()]} (in the environment)"
            return shown, None, f"change or unset {name.upper()} in the environment"
    for name in variable_names(info):
        if from_file.get(name.upper()) not in (None, ""):
            shown = f"{name.upper()}={from_file[name.upper()]} (in {env_file})"
            return shown, None, f"fix {name.upper()} in {env_file}"
    return field, None, "check the setting"


def _shown(value: Any) -> str:
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return str(value)
    return repr(value) if isinstance(value, str) else str(value)


def setting_error(
    field: str,
    fields: Mapping[str, FieldInfo],
    given: Mapping[str, Any],
    env_file: Path | None,
    value: Any = None,
    problem: str | None = None,
) -> InputError:
    """One `error:` line naming the flag or variable (and its file), the value and what is accepted."""
    info = fields[field]
    where, flag_value, fix = source_of(field, info, given, env_file)
    what = problem or f"must be {accepted(info) or 'a valid value'}"
    hint = f"{fix}: {HINTS[field]}" if field in HINTS else fix
    if field in given:
        return InputError(f"{where} {what}, got {_shown(flag_value)}", hint=hint)
    if where == field:  # not found in any source (a default): name the setting and the value
        return InputError(f"setting {field} {what}, got {_shown(value)}", hint=hint)
    return InputError(f"{where}: {what}", hint=hint)
