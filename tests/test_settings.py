"""Settings check their own values: the same `error:` line from a flag, the environment or .env."""

from __future__ import annotations

from pathlib import Path

import pytest

from facetopt.errors import ConfigError, InputError
from facetopt.settings import load_settings


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("positive_limit", -1, "limits must be zero or more"),
        ("negative_limit", -5, "limits must be zero or more"),
        ("limit", -1, "limits must be zero or more"),
        ("validation_fraction", 1.0, "--validation-fraction must be in [0, 1), got 1.0"),
        ("validation_fraction", -0.1, "--validation-fraction must be in [0, 1), got -0.1"),
        ("concurrency", 0, "--concurrency and --trials must be at least 1"),
        ("trials", 0, "--concurrency and --trials must be at least 1"),
        ("backend", "cloud", "unknown backend 'cloud'"),
    ],
)
def test_a_bad_flag_is_one_input_error(name: str, value: object, message: str):
    with pytest.raises(InputError) as caught:
        load_settings(None, **{name: value})
    assert caught.value.message == message and caught.value.hint


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("FACET_OPTIMIZER_POSITIVE_LIMIT", "-1", "limits must be zero or more"),
        ("FACET_OPTIMIZER_VALIDATION_FRACTION", "1.5", "--validation-fraction must be in [0, 1), got 1.5"),
        ("FACET_OPTIMIZER_TRIALS", "0", "--concurrency and --trials must be at least 1"),
        ("FACET_OPTIMIZER_BACKEND", "cloud", "unknown backend 'cloud'"),
    ],
)
def test_a_bad_variable_gets_the_same_error(
    monkeypatch, tmp_path: Path, variable: str, value: str, message: str
):
    monkeypatch.setenv(variable, value)
    with pytest.raises(InputError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        load_settings(None)
    monkeypatch.delenv(variable)
    env_file = tmp_path / "settings.env"
    env_file.write_text(f"{variable}={value}\n")
    with pytest.raises(InputError):
        load_settings(env_file)


def test_edge_values_are_accepted_and_flags_win_over_the_environment(monkeypatch):
    monkeypatch.setenv("FACET_OPTIMIZER_POSITIVE_LIMIT", "-1")  # overridden by the flag: never checked
    settings = load_settings(None, positive_limit=0, negative_limit=0, limit=0, validation_fraction=0.0)
    assert (settings.positive_limit, settings.negative_limit, settings.limit) == (0, 0, 0)
    assert settings.validation_fraction == 0.0
    flags = {"positive_limit": 5, "concurrency": 1, "trials": 1, "backend": "braintrust"}
    assert load_settings(None, **flags).backend == "braintrust"


def test_a_value_of_the_wrong_type_still_names_the_setting():
    with pytest.raises(ConfigError, match="invalid value for positive_limit"):
        load_settings(None, positive_limit="many")
