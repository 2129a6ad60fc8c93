"""Settings check their own values and name where a bad one came from: the flag, or the variable
and the environment or the `.env` file, with the value and the accepted range.

The numeric checks are driven by the settings model's fields, so a new numeric setting is covered
(and must declare its range) without a line here.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from facetopt.errors import ConfigError, FacetoptError, InputError
from facetopt.settings import Settings, load_settings
from facetopt.settings_check import FLAG_NAMES, variable_names


def _numeric_fields() -> dict[str, tuple[type, dict[str, float]]]:
    """field -> (int or float, its declared bounds), read off the model's fields."""
    found = {}
    for name, info in Settings.model_fields.items():
        kinds = {info.annotation, *getattr(info.annotation, "__args__", ())}
        kind = int if int in kinds else float if float in kinds else None
        if kind is None:
            continue
        bounds = {}
        for item in info.metadata:
            for key in ("ge", "gt", "le", "lt"):
                if getattr(item, key, None) is not None:
                    bounds[key] = getattr(item, key)
        found[name] = (kind, bounds)
    return found


NUMERIC = _numeric_fields()


def _bad_values(kind: type, bounds: dict[str, float]) -> list[str]:
    """Text values a user could write that must be refused: non-numbers and numbers out of range."""
    bad = ["nan", "inf", "-inf", "lots"]
    if kind is int:
        bad.append("1.5")
    if "ge" in bounds:
        bad.append(str(bounds["ge"] - 1 if kind is int else bounds["ge"] - 0.01))
    if "gt" in bounds:
        bad.append(str(bounds["gt"]))
    if "lt" in bounds:
        bad.append(str(bounds["lt"]))
    if "le" in bounds:
        bad.append(str(bounds["le"] + 1))
    return bad


def _variable(field: str) -> str:
    return variable_names(Settings.model_fields[field])[0].upper()


def test_every_numeric_setting_declares_its_range() -> None:
    assert len(NUMERIC) >= 15  # limits, fractions, tokens, concurrencies, rows, trials, cost, seconds
    unbounded = [name for name, (_, bounds) in NUMERIC.items() if not bounds]
    assert unbounded == []


@pytest.mark.parametrize("field", sorted(NUMERIC))
def test_a_bad_number_in_env_file_names_its_variable_file_value_and_range(
    field: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    kind, bounds = NUMERIC[field]
    variable = _variable(field)
    for value in _bad_values(kind, bounds):
        (tmp_path / ".env").write_text(f"{variable}={value}\n")
        with pytest.raises(InputError) as caught:
            load_settings(None)
        message = caught.value.message
        assert message.startswith(f"{variable}={value} (in .env): must be "), message
        assert "--" not in message  # never blamed on a flag nobody typed
        assert variable in (caught.value.hint or "") and ".env" in (caught.value.hint or "")
        if "lt" in bounds:  # a range with both ends, written as an interval
            assert f"in [{bounds['ge']:g}, {bounds['lt']:g})" in message
        elif "ge" in bounds:
            assert f"{bounds['ge']:g} or more" in message
        elif "gt" in bounds:
            assert f"above {bounds['gt']:g}" in message


@pytest.mark.parametrize("field", sorted(NUMERIC))
def test_a_bad_number_in_the_environment_or_a_flag_is_named_as_such(
    field: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    kind, bounds = NUMERIC[field]
    variable = _variable(field)
    monkeypatch.setenv(variable, "nan")
    with pytest.raises(InputError, match=rf"^{variable}=nan \(in the environment\): must be "):
        load_settings(None)
    monkeypatch.delenv(variable)
    flag = FLAG_NAMES.get(field, "--" + field.replace("_", "-"))
    for value in (math.nan, math.inf):
        with pytest.raises(InputError) as caught:
            load_settings(None, **{field: value})
        assert caught.value.message.startswith(f"{flag} must be ") and caught.value.message.endswith(
            f"got {value}"
        )


@pytest.mark.parametrize("field", sorted(NUMERIC))
def test_the_ends_of_each_range_are_accepted(field: str, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    kind, bounds = NUMERIC[field]
    low = bounds.get("ge", bounds.get("gt", 0) + (1 if kind is int else 0.001))
    (tmp_path / ".env").write_text(f"{_variable(field)}={low}\n")
    settings = load_settings(None)
    assert getattr(settings, field) in (low, None)  # max-rows 0 means every row (None)


def test_the_issue_example_names_the_env_file_not_a_flag(tmp_path: Path) -> None:
    env_file = tmp_path / "conf.env"
    env_file.write_text("FACET_OPTIMIZER_VALIDATION_FRACTION=2\n")
    with pytest.raises(InputError) as caught:
        load_settings(env_file)
    assert caught.value.message == (
        f"FACET_OPTIMIZER_VALIDATION_FRACTION=2 (in {env_file}): must be in [0, 1)"
    )


@pytest.mark.parametrize(
    ("variable", "value", "accepted"),
    [
        ("FACET_OPTIMIZER_BACKEND", "cloud", "one of braintrust, local"),
        ("FACET_OPTIMIZER_SPLIT", "tset", "train, validation, test, a comma list of them, or all"),
        ("FACET_OPTIMIZER_USE_CACHE", "perhaps", "true or false"),
        ("FACET_OPTIMIZER_PRICES", "gpt-5.4=cheap", "dollars per million tokens"),
    ],
)
def test_bad_words_are_named_like_bad_numbers(
    tmp_path: Path, variable: str, value: str, accepted: str
) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(f"{variable}={value}\n")
    with pytest.raises(InputError) as caught:
        load_settings(env_file)
    assert caught.value.message.startswith(f"{variable}={value} (in {env_file}): must be ")
    assert accepted in caught.value.message


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("positive_limit", -1, "--positive-limit must be a whole number, 0 or more, got -1"),
        ("validation_fraction", 1.0, "--validation-fraction must be in [0, 1), got 1.0"),
        ("ground_truth_concurrency", 0, "--concurrency must be a whole number, 1 or more, got 0"),
        ("trials", 0, "--trials must be a whole number, 1 or more, got 0"),
        ("backend", "cloud", "--backend must be one of braintrust, local, got 'cloud'"),
        (
            "split",
            "tset",
            "--split must be train, validation, test, a comma list of them, or all, got 'tset'",
        ),
    ],
)
def test_a_bad_flag_is_one_input_error_naming_the_flag(name: str, value: object, message: str):
    with pytest.raises(InputError) as caught:
        load_settings(None, **{name: value})
    assert caught.value.message == message and caught.value.hint


def test_fractions_that_leave_no_train_name_both_sources(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("FACET_OPTIMIZER_TEST_FRACTION=0.5\n")
    with pytest.raises(InputError) as caught:
        load_settings(env_file, validation_fraction=0.6)
    assert caught.value.message == (
        f"--validation-fraction 0.6 and FACET_OPTIMIZER_TEST_FRACTION=0.5 (in {env_file}) leave nothing for train"
    )


def test_edge_values_are_accepted_and_flags_win_over_the_environment(monkeypatch):
    monkeypatch.setenv("FACET_OPTIMIZER_POSITIVE_LIMIT", "-1")  # overridden by the flag: never checked
    settings = load_settings(None, positive_limit=0, negative_limit=0, limit=0, validation_fraction=0.0)
    assert (settings.positive_limit, settings.negative_limit, settings.limit) == (0, 0, 0)
    assert settings.validation_fraction == 0.0
    flags = {"positive_limit": 5, "concurrency": 1, "trials": 1, "backend": "braintrust"}
    assert load_settings(None, **flags).backend == "braintrust"


def test_the_environment_wins_over_env_file_and_is_the_one_named(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("FACET_OPTIMIZER_MAX_TOKENS=100\n")
    monkeypatch.setenv("FACET_OPTIMIZER_MAX_TOKENS", "-1")
    with pytest.raises(FacetoptError, match=r"^FACET_OPTIMIZER_MAX_TOKENS=-1 \(in the environment\)"):
        load_settings(None)


def test_a_value_of_the_wrong_type_still_names_the_setting():
    with pytest.raises(InputError, match="--positive-limit must be a whole number, 0 or more, got 'many'"):
        load_settings(None, positive_limit="many")
    assert not issubclass(InputError, ConfigError)  # a bad value is the user's input, exit 1 either way


@pytest.mark.parametrize(
    ("line", "named"),
    [
        (
            "FACET_OPTIMIZER_GROUND_TRUTH_MAX_TOKENS=-1",
            "FACET_OPTIMIZER_GROUND_TRUTH_MAX_TOKENS=-1 (in .env)",
        ),
        ("FACET_OPTIMIZER_REQUEST_TIMEOUT=nan", "FACET_OPTIMIZER_REQUEST_TIMEOUT=nan (in .env)"),
        ("FACET_OPTIMIZER_CONCURRENCY=0", "FACET_OPTIMIZER_CONCURRENCY=0 (in .env)"),
    ],
)
def test_a_command_stops_on_a_bad_env_file_line_before_any_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, line: str, named: str
) -> None:
    from tests.cli.dataset_helpers import create_args, run_cli
    from tests.fakes.openai_server import FakeOpenAIServer

    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text(line + "\n")
    with FakeOpenAIServer() as server:
        result = run_cli(
            *create_args(tmp_path / "state"),
            env={
                "FACET_OPTIMIZER_GROUND_TRUTH_API_BASE": server.url,
                "FACET_OPTIMIZER_GROUND_TRUTH_API_KEY": "k-1",
            },
        )
        calls = server.count
    errors = [x for x in result.stderr.splitlines() if x.startswith("error:")]
    assert result.exit_code == 1 and len(errors) == 1 and named in errors[0], result.stderr
    assert "hint:" in result.stderr and "Traceback" not in result.stderr
    assert calls == 0
