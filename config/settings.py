"""The one settings object: every knob of the service, read from ``MISSION_*`` variables."""

from __future__ import annotations

import hashlib
import re
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

CONFIG_DIR = Path(__file__).resolve().parent
DEFAULT_TEMPLATES = CONFIG_DIR / "mission_templates.json"


TENANT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
Role = Literal["viewer", "operator", "approver", "admin"]


class ApiKeyGrant(BaseModel):
    """What one API key may do: ``viewer`` reads and subscribes, ``operator`` also deploys and
    cancels, ``approver`` reads and decides approval gates (not deploy), ``admin`` does everything
    for every tenant."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tenant: str = Field(pattern=TENANT_PATTERN)
    role: Role


# A model name as prices and templates spell it.
MODEL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:/@+-]{0,127}$"


class ModelPrice(BaseModel):
    """A model's prices per million tokens, in the budget's currency (at most 4 decimal places)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input: Decimal = Field(ge=0, le=100_000, decimal_places=4)
    output: Decimal = Field(ge=0, le=100_000, decimal_places=4)


class Settings(BaseSettings):
    """Built once per process (``Settings()``) and passed down explicitly."""

    model_config = SettingsConfigDict(env_prefix="MISSION_", extra="ignore", frozen=True)

    @field_validator("redis_sentinels", mode="before")
    @classmethod
    def _split_sentinels(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("redis_sentinels")
    @classmethod
    def _check_sentinels(cls, value: list[str]) -> list[str]:
        for address in value:
            host, _, port = address.rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"{address!r} is not host:port")
        return value

    @property
    def sentinel_addresses(self) -> list[tuple[str, int]]:
        return [(host, int(port)) for host, _, port in (a.rpartition(":") for a in self.redis_sentinels)]

    # --- Redis and the queue ---
    redis_url: str = Field("redis://127.0.0.1:6379/0", description="Redis holding queue, state and events")
    redis_sentinels: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="host:port of Redis Sentinels, comma-separated; set: use them"
    )
    redis_sentinel_master: str = Field("mymaster", description="the primary's name the Sentinels monitor")
    queue: str = Field("mission:queue", description="ARQ queue name shared by servers and workers")
    key_prefix: str = Field("ms", description="prefix of every key and channel this service writes")
    redis_max_connections: int = Field(50, ge=2, le=10_000, description="per process; bursts wait for one")
    redis_pool_timeout_seconds: float = Field(10.0, gt=0, description="longest wait for a free connection")

    # --- templates ---
    templates_path: Path = Field(DEFAULT_TEMPLATES, description="the template registry file")

    # --- workers ---
    worker_concurrency: int = Field(50, ge=1, le=10_000, description="agent jobs one worker runs at once")
    poll_seconds: float = Field(0.5, gt=0, le=60, description="worker poll when idle; new jobs wake workers at once")
    lease_seconds: float = Field(10.0, gt=0.5, le=3600, description="a running job's lease")
    reap_every_seconds: int = Field(2, ge=1, le=60, description="how often lapsed leases are reaped")
    max_lease_losses: int = Field(3, ge=0, le=100, description="re-runs granted to a job whose worker died")
    retry_backoff_seconds: float = Field(0.5, ge=0, le=3600, description="first retry delay, doubled per try")
    retry_backoff_max_seconds: float = Field(30.0, ge=0, le=86_400)

    # --- missions ---
    max_inputs_bytes: int = Field(64 * 1024, ge=2, description="largest mission `inputs` as JSON")
    retention_seconds: int = Field(
        7 * 86_400, ge=1, description="event logs and outputs of finished missions expire after this"
    )
    summary_retention_seconds: int = Field(
        90 * 86_400,
        ge=0,
        description="finished missions (summary, jobs, index entries) are removed after this; 0 keeps them",
    )

    # --- the API server ---
    host: str = Field("127.0.0.1", description="address `serve` listens on")
    port: int = Field(8000, ge=0, le=65_535, description="port `serve` listens on")
    graphiql: bool = Field(True, description="serve GraphiQL on GET /graphql")
    introspection: bool = Field(True, description="allow schema introspection")
    max_query_depth: int = Field(12, ge=1, le=100)
    max_query_tokens: int = Field(2_000, ge=10)
    max_query_aliases: int = Field(30, ge=1)
    max_query_fields: int = Field(200, ge=1, description="fields one query may select")
    max_subscriptions_per_connection: int = Field(20, ge=1, le=10_000)
    max_request_bytes: int = Field(256 * 1024, ge=1024, description="larger request bodies get 413")
    read_cache_entries: int = Field(
        1_024, ge=0, description="answers to mission(id) kept per process until the mission changes; 0: none"
    )
    share_subscriptions: bool = Field(
        True, description="identical subscriptions (document, variables, tenant, role) share one execution"
    )

    # --- security ---
    api_keys: dict[str, ApiKeyGrant] = Field(
        default_factory=dict,
        repr=False,
        description='JSON: {"<key>": {"tenant": "...", "role": "viewer|operator|approver|admin"}}; '
        "none = open (loopback only)",
    )
    allow_self_approval: bool = Field(
        False, description="let the key that deployed a mission approve it too (single-person setups)"
    )
    deploy_rate_limit: int = Field(120, ge=1, description="deploys per key per window")
    deploy_rate_window_seconds: int = Field(60, ge=1)

    # --- model agents (any OpenAI-compatible chat-completions endpoint) ---
    llm_base_url: str | None = Field(
        None, description="e.g. http://127.0.0.1:8081/v1; unset: `up` starts the embedded local model"
    )
    llm_api_key: SecretStr | None = Field(None, repr=False, description="sent as a bearer token; never shown to agents")
    llm_model: str = Field("SmolLM2-135M-Instruct", pattern=MODEL_PATTERN, description="the default model")
    llm_prices: dict[str, ModelPrice] = Field(
        default_factory=dict,
        description='JSON: {"<model>": {"input": "0.15", "output": "0.60"}} per million tokens; unpriced: refused',
    )
    llm_timeout_seconds: float = Field(60.0, gt=0, le=3600, description="one request, retries included")
    llm_concurrency: int = Field(16, ge=1, le=10_000, description="model requests one worker sends at once")
    llm_max_retries: int = Field(3, ge=0, le=20, description="retries of a 429 or 5xx answer")
    llm_prompt_allowance: int = Field(
        64, ge=0, le=100_000, description="tokens a chat template adds to a prompt (raised to what the server measures)"
    )
    llm_message_allowance: int = Field(
        8, ge=0, le=10_000, description="tokens a chat template adds per message (raised to what the server measures)"
    )
    llm_min_tokens: int = Field(16, ge=1, le=100_000, description="below this, a shrunk max_tokens is refused")

    @field_validator("llm_prices")
    @classmethod
    def _check_models(cls, value: dict[str, ModelPrice]) -> dict[str, ModelPrice]:
        for name in value:
            if not re.match(MODEL_PATTERN, name):
                raise ValueError(f"{name!r} is not a model name")
        return value

    # --- logs ---
    log_format: Literal["auto", "json", "text"] = Field("auto", description="auto: text on a terminal, else JSON")


class SettingsError(ValueError):
    """Bad ``MISSION_*`` values, described without echoing them (API keys are secrets)."""


def load_settings() -> Settings:
    """`Settings()` from the environment; `SettingsError` names each bad variable and why."""
    try:
        return Settings()
    except ValidationError as exc:
        lines = []
        for error in exc.errors(include_url=False, include_input=False):
            loc = [str(part) for part in error["loc"]]
            if loc and loc[0] == "api_keys" and len(loc) > 1:  # the key itself is part of the location
                loc[1] = "key#" + hashlib.sha256(loc[1].encode()).hexdigest()[:12]
            lines.append(f"MISSION_{loc[0].upper()}{''.join(f'[{p}]' for p in loc[1:])}: {error['msg']}")
        raise SettingsError("invalid settings:\n  " + "\n  ".join(lines)) from None
