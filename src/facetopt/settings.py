"""Settings: command-line flags > environment > `.env` > defaults.

Variable names follow the original facet-optimizer scripts so an existing `.env`
keeps working (unknown names are warned about: `settings_names`); defaults, per-model defaults and
the price format are in `settings_defaults`. Secrets are `SecretStr`: they never reach output, logs
or artifacts.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from facetopt.errors import ConfigError, FacetoptError, InputError
from facetopt.settings_defaults import (
    BACKENDS,
    DEFAULT_EVAL_DATASET,
    DEFAULT_OUTPUT_ROOT,
    DEFAULT_PROJECT,
    DEFAULT_PROXY_URL,
    DEFAULT_SOURCE_MODELS,
    MODEL_DEFAULTS,
    SIMULATED_BASE_URL,
    parse_prices,
)
from facetopt.settings_names import dotenv_parse_warnings, known_names, unknown_name_warnings

# the defaults and the price format are imported from here by the rest of the package
__all__ = [
    "BACKENDS",
    "DEFAULT_EVAL_DATASET",
    "DEFAULT_OUTPUT_ROOT",
    "DEFAULT_PROJECT",
    "DEFAULT_PROXY_URL",
    "DEFAULT_SOURCE_MODELS",
    "MODEL_DEFAULTS",
    "SIMULATED_BASE_URL",
    "Settings",
    "load_settings",
    "parse_prices",
]


LEAVES_NO_TRAIN = "leave nothing for train"


def _env(name: str, *more: str) -> Any:
    return AliasChoices(name, *more)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
        case_sensitive=False,
        env_ignore_empty=True,  # `NAME=` in a copied .env.example means "not set", as it did there
    )

    # where state lives
    output_root: Path = Field(DEFAULT_OUTPUT_ROOT, validation_alias=_env("FACET_OPTIMIZER_OUTPUT_ROOT"))
    backend: Literal["braintrust", "local"] | None = Field(
        None, validation_alias=_env("FACET_OPTIMIZER_BACKEND")
    )

    # dataset create
    source_project: str | None = Field(None, validation_alias=_env("FACET_OPTIMIZER_SOURCE_PROJECT"))
    target_project: str | None = Field(None, validation_alias=_env("FACET_OPTIMIZER_TARGET_PROJECT"))
    # the original's fallback for the target project (facetopt 0.1 read it as the experiment project)
    legacy_project: str | None = Field(None, validation_alias=_env("FACET_OPTIMIZER_PROJECT"))
    dataset: str | None = Field(None, validation_alias=_env("FACET_OPTIMIZER_DATASET"))
    source_org: str | None = Field(None, validation_alias=_env("FACET_OPTIMIZER_SOURCE_ORG"))
    target_org: str | None = Field(None, validation_alias=_env("FACET_OPTIMIZER_TARGET_ORG"))
    source_models: str = Field(
        ",".join(DEFAULT_SOURCE_MODELS),
        validation_alias=_env("FACET_OPTIMIZER_SOURCE_MODELS", "FACET_OPTIMIZER_SOURCE_MODEL"),
    )
    facet_name: str | None = Field(None, validation_alias=_env("FACET_OPTIMIZER_FACET_NAME"))
    positive_limit: int = Field(100, ge=0, validation_alias=_env("FACET_OPTIMIZER_POSITIVE_LIMIT"))
    negative_limit: int = Field(100, ge=0, validation_alias=_env("FACET_OPTIMIZER_NEGATIVE_LIMIT"))
    limit: int | None = Field(None, ge=0, validation_alias=_env("FACET_OPTIMIZER_LIMIT"))
    created_after_sql: str = Field(
        "NOW() - INTERVAL 7 DAY", validation_alias=_env("FACET_OPTIMIZER_CREATED_AFTER_SQL")
    )
    created_before_sql: str = Field(
        "NOW() - INTERVAL 1 HOUR", validation_alias=_env("FACET_OPTIMIZER_CREATED_BEFORE_SQL")
    )
    extra_where_sql: str | None = Field(None, validation_alias=_env("FACET_OPTIMIZER_EXTRA_WHERE_SQL"))
    validation_fraction: float = Field(
        0.2, ge=0, lt=1, allow_inf_nan=False, validation_alias=_env("FACET_OPTIMIZER_VALIDATION_FRACTION")
    )
    test_fraction: float = Field(
        0.0, ge=0, lt=1, allow_inf_nan=False, validation_alias=_env("FACET_OPTIMIZER_TEST_FRACTION")
    )
    source_files: str | None = Field(
        None, validation_alias=_env("FACET_OPTIMIZER_SOURCE_FILE", "FACET_OPTIMIZER_SOURCE_FILES")
    )

    # labeller
    ground_truth_model: str = Field("gpt-5.4", validation_alias=_env("FACET_OPTIMIZER_GROUND_TRUTH_MODEL"))
    ground_truth_api_base: str | None = Field(
        None,
        validation_alias=_env("FACET_OPTIMIZER_GROUND_TRUTH_API_BASE", "FACET_OPTIMIZER_LABEL_API_BASE"),
    )
    ground_truth_api_key: SecretStr | None = Field(
        None, validation_alias=_env("FACET_OPTIMIZER_GROUND_TRUTH_API_KEY", "FACET_OPTIMIZER_LABEL_API_KEY")
    )
    ground_truth_max_tokens: int = Field(
        512, ge=1, validation_alias=_env("FACET_OPTIMIZER_GROUND_TRUTH_MAX_TOKENS")
    )
    ground_truth_concurrency: int = Field(
        128,
        ge=1,
        validation_alias=_env("FACET_OPTIMIZER_CONCURRENCY", "FACET_OPTIMIZER_GROUND_TRUTH_CONCURRENCY"),
    )

    # auditor: the second opinion of `dataset audit` (default: the labeller again, re-worded)
    audit_model: str | None = Field(None, validation_alias=_env("FACET_OPTIMIZER_AUDIT_MODEL"))
    audit_api_base: str | None = Field(None, validation_alias=_env("FACET_OPTIMIZER_AUDIT_API_BASE"))
    audit_api_key: SecretStr | None = Field(None, validation_alias=_env("FACET_OPTIMIZER_AUDIT_API_KEY"))

    # proposer: the model `optimize` asks for prompt edits (default: the labeller's model and endpoint)
    proposer_model: str | None = Field(None, validation_alias=_env("FACET_OPTIMIZER_PROPOSER_MODEL"))
    proposer_api_base: str | None = Field(None, validation_alias=_env("FACET_OPTIMIZER_PROPOSER_API_BASE"))
    proposer_api_key: SecretStr | None = Field(
        None, validation_alias=_env("FACET_OPTIMIZER_PROPOSER_API_KEY")
    )

    # facet model (eval)
    model: str = Field("brain-facet-1", validation_alias=_env("FACET_OPTIMIZER_MODEL"))
    api_base: str | None = Field(None, validation_alias=_env("FACET_OPTIMIZER_API_BASE"))
    api_key: SecretStr | None = Field(None, validation_alias=_env("FACET_OPTIMIZER_API_KEY"))
    max_tokens: int = Field(20000, ge=1, validation_alias=_env("FACET_OPTIMIZER_MAX_TOKENS"))
    concurrency: int = Field(16, ge=1, validation_alias=_env("FACET_OPTIMIZER_MAX_CONCURRENCY"))
    prompt: Path | None = Field(None, validation_alias=_env("FACET_OPTIMIZER_PROMPT"))
    split: str | None = Field(None, validation_alias=_env("FACET_OPTIMIZER_SPLIT"))
    max_rows: int | None = Field(None, ge=0, validation_alias=_env("FACET_OPTIMIZER_MAX_ROWS"))
    project: str | None = Field(None, validation_alias=_env("FACET_OPTIMIZER_EVAL_PROJECT"))
    dataset_project: str | None = Field(None, validation_alias=_env("FACET_OPTIMIZER_DATASET_PROJECT"))
    experiment_prefix: str = Field(
        "facet-optimizer", validation_alias=_env("FACET_OPTIMIZER_EXPERIMENT_PREFIX")
    )
    trials: int = Field(
        1, ge=1, validation_alias=_env("FACET_OPTIMIZER_TRIAL_COUNT", "FACET_OPTIMIZER_TRIALS")
    )
    facet_filter: str | None = Field(None, validation_alias=_env("FACET_OPTIMIZER_FACET_FILTER"))
    dataset_ids: str | None = Field(None, validation_alias=_env("FACET_OPTIMIZER_DATASET_IDS"))

    # publish (the original scripts' publishing names)
    facet_project: str | None = Field(None, validation_alias=_env("FACET_OPTIMIZER_FACET_PROJECT"))
    facet_slug: str | None = Field(None, validation_alias=_env("FACET_OPTIMIZER_FACET_SLUG"))
    facet_version: str | None = Field(None, validation_alias=_env("FACET_OPTIMIZER_FACET_VERSION"))

    # judge
    judge_model: str = Field("gpt-5.4", validation_alias=_env("FACET_OPTIMIZER_JUDGE_MODEL"))
    judge_api_base: str | None = Field(None, validation_alias=_env("FACET_OPTIMIZER_JUDGE_API_BASE"))
    judge_api_key: SecretStr | None = Field(None, validation_alias=_env("FACET_OPTIMIZER_JUDGE_API_KEY"))

    # cost: prices in dollars per million tokens (`model=input/output,...`); a limit per command
    prices: str | None = Field(None, validation_alias=_env("FACET_OPTIMIZER_PRICES"))
    max_cost: float | None = Field(
        None, gt=0, allow_inf_nan=False, validation_alias=_env("FACET_OPTIMIZER_MAX_COST")
    )

    request_timeout: float = Field(
        120.0, gt=0, allow_inf_nan=False, validation_alias=_env("FACET_OPTIMIZER_REQUEST_TIMEOUT")
    )
    # how long one paid call may keep being retried (429s, 5xx, timeouts, resets), in seconds
    call_deadline: float = Field(
        600.0, gt=0, allow_inf_nan=False, validation_alias=_env("FACET_OPTIMIZER_CALL_DEADLINE")
    )
    use_cache: bool = Field(True, validation_alias=_env("FACET_OPTIMIZER_USE_CACHE"))
    # seconds the eval runner has to send its logs to Braintrust once every row is scored
    flush_deadline: float = Field(
        300.0, gt=0, allow_inf_nan=False, validation_alias=_env("FACET_OPTIMIZER_FLUSH_DEADLINE")
    )

    # Braintrust and provider credentials
    braintrust_api_key: SecretStr | None = Field(None, validation_alias=_env("BRAINTRUST_API_KEY"))
    openai_api_key: SecretStr | None = Field(None, validation_alias=_env("OPENAI_API_KEY"))
    braintrust_app_url: str = Field("https://www.braintrust.dev", validation_alias=_env("BRAINTRUST_APP_URL"))
    braintrust_api_url: str | None = Field(None, validation_alias=_env("BRAINTRUST_API_URL"))
    braintrust_proxy_url: str | None = Field(None, validation_alias=_env("BRAINTRUST_PROXY_URL"))
    # the original's base URL for the proxy (labeller and facet model)
    braintrust_proxy_api_base: str | None = Field(None, validation_alias=_env("BRAINTRUST_PROXY_API_BASE"))
    braintrust_org_name: str | None = Field(None, validation_alias=_env("BRAINTRUST_ORG_NAME"))

    @field_validator("max_rows", mode="before")
    @classmethod
    def _zero_rows_is_none(cls, value: Any) -> Any:
        return None if value in (0, "0") else value

    @model_validator(mode="after")
    def _original_fallbacks(self) -> Settings:
        """The original's chains: FACET_OPTIMIZER_PROJECT after the target project, the login's org."""
        if self.target_project is None and self.legacy_project:
            self.target_project = self.legacy_project
        if self.braintrust_org_name:
            self.source_org = self.source_org or self.braintrust_org_name
            self.target_org = self.target_org or self.braintrust_org_name
        return self

    @property
    def project_or_default(self) -> str:
        """The target project as the original's commands read it (default `Facet Optimizer`)."""
        return self.target_project or DEFAULT_PROJECT

    @property
    def eval_project(self) -> str:
        """Where experiments go: --project / FACET_OPTIMIZER_EVAL_PROJECT, else the target project."""
        return self.project or self.project_or_default

    @property
    def eval_dataset_project(self) -> str:
        """The eval's dataset project: FACET_OPTIMIZER_DATASET_PROJECT, else the eval project."""
        return self.dataset_project or self.eval_project

    @property
    def facet_filter_list(self) -> list[str]:
        return [f.strip().lower() for f in (self.facet_filter or "").split(",") if f.strip()]

    @property
    def dataset_id_list(self) -> list[str]:
        return [i.strip() for i in (self.dataset_ids or "").split(",") if i.strip()]

    # Checks that raise facetopt's own errors: pydantic lets them through unwrapped, so the user
    # sees the same `error:` line whether the value came from a flag, the environment or .env.

    # Range checks are the fields' constraints (ge, gt, lt, allow_inf_nan); load_settings names the
    # flag or variable a bad value came from (settings_check.py).

    @field_validator("split")
    @classmethod
    def _known_splits(cls, value: str | None) -> str | None:
        splits = [v.strip().lower() for v in (value or "").split(",") if v.strip()]
        if any(v not in ("train", "validation", "test", "all") for v in splits) or (
            "all" in splits and len(splits) > 1
        ):
            raise ValueError("must be train, validation, test, a comma list of them, or all")
        return value

    @field_validator("prices")
    @classmethod
    def _prices_parse(cls, value: str | None) -> str | None:
        try:
            parse_prices(value)
        except ValueError as exc:
            raise ValueError(
                f"must be dollars per million tokens, e.g. 'gpt-5.4=1.25/10,*=1/4' ({exc})"
            ) from None
        return value

    @model_validator(mode="after")
    def _fractions_leave_train(self) -> Settings:
        if self.validation_fraction + self.test_fraction >= 1:
            raise ValueError(LEAVES_NO_TRAIN)
        return self

    @property
    def source_model_list(self) -> list[str]:
        return [m.strip() for m in self.source_models.split(",") if m.strip()]

    @property
    def store_path(self) -> Path:
        return self.output_root / "store.duckdb"

    @property
    def prompt_path(self) -> Path:
        return self.prompt or self.output_root / "facet_definitions.yaml"

    def resolved_backend(self) -> Literal["braintrust", "local"]:
        if self.backend:
            return self.backend
        return "braintrust" if self.braintrust_api_key else "local"

    def timeout_for(self, model: str) -> float:
        """The request timeout for `model`: the setting when given, else the model's default."""
        if "request_timeout" in self.model_fields_set or model not in MODEL_DEFAULTS:
            return self.request_timeout
        return MODEL_DEFAULTS[model].request_timeout

    def eval_concurrency_for(self, model: str) -> int:
        """Rows in flight for an eval of `model`: the setting when given, else the model's default."""
        if "concurrency" in self.model_fields_set or model not in MODEL_DEFAULTS:
            return self.concurrency
        return MODEL_DEFAULTS[model].concurrency

    def backend_note(self) -> str | None:
        """Why this backend, when the user did not choose one (None when they did)."""
        if self.backend:
            return None
        backend = self.resolved_backend()
        why = "BRAINTRUST_API_KEY is set" if self.braintrust_api_key else "no BRAINTRUST_API_KEY is set"
        return f"backend: {backend} ({why}; choose with --backend)"

    def require(self, field: str, flag: str, env: str) -> Any:
        value = getattr(self, field)
        if value in (None, ""):
            raise ConfigError(
                f"{flag} is required",
                hint=f"pass {flag} or set {env} in the environment or .env",
            )
        return value


def load_settings(
    env_file: Path | None = None, warn: Callable[[str], None] | None = None, **overrides: Any
) -> Settings:
    """Build settings; `overrides` are command-line flags, and None means "not given"."""
    given = {k: v for k, v in overrides.items() if v is not None}
    path = env_file if env_file is not None else Path(".env")
    if env_file is not None and not env_file.exists():
        raise ConfigError(f"env file not found: {env_file}", hint="pass an existing file to --env-file")
    if path.is_dir():
        raise ConfigError(
            f"env file {path} is a directory", hint="pass the settings file itself, e.g. --env-file conf/.env"
        )
    if path.is_file():
        try:
            path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigError(
                f"env file {path} is not UTF-8 text (byte {exc.start})", hint="save it as UTF-8"
            ) from None
        except OSError as exc:
            raise ConfigError(
                f"cannot read env file {path}: {exc.strerror}", hint="check its permissions"
            ) from None
    if warn is not None:
        known = known_names(Settings.model_fields)
        found = path if path.exists() else None
        for message in [*dotenv_parse_warnings(found), *unknown_name_warnings(found, known)]:
            warn(message)
    try:
        settings = Settings(_env_file=path if path.exists() else None, **given)
    except FacetoptError:
        raise
    except ValidationError as exc:  # one line naming the flag or variable, its value and the range
        raise _named(exc, given, path if path.exists() else None) from None
    if settings.output_root.exists() and not settings.output_root.is_dir():
        raise ConfigError(
            f"--output-root {settings.output_root} is a file, not a folder",
            hint="pass a folder (new or existing) to --output-root or FACET_OPTIMIZER_OUTPUT_ROOT",
        )
    return settings


def _named(exc: ValidationError, given: dict[str, Any], env_file: Path | None) -> FacetoptError:
    from facetopt.settings_check import setting_error, source_of, variable_names

    fields = Settings.model_fields
    by_name = {name.upper(): field for field, info in fields.items() for name in variable_names(info)}
    first = exc.errors()[0]
    loc = first.get("loc") or ()
    if not loc and LEAVES_NO_TRAIN in str(first.get("msg")):
        parts = [
            source_of(f, fields[f], given, env_file)[0:2] for f in ("validation_fraction", "test_fraction")
        ]
        said = " and ".join(f"{where} {value}" if value is not None else where for where, value in parts)
        return InputError(
            f"{said} {LEAVES_NO_TRAIN}",
            hint="keep their sum below 1 (e.g. 0.2 and 0.1); each group of more than one row "
            "keeps at least one train row anyway",
        )
    name = str(loc[0]) if loc else ""
    field = name if name in fields else by_name.get(name.upper())
    if field is None:
        return ConfigError(
            f"invalid setting {name or '?'}: {first.get('msg')}", hint="check the flag or variable"
        )
    problem = None
    if first.get("type") == "value_error":
        problem = str(first.get("msg")).removeprefix("Value error, ")
    return setting_error(field, fields, given, env_file, first.get("input"), problem)
