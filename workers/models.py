"""The worker's model provider: any OpenAI-compatible chat-completions endpoint, reached with httpx.

It holds the endpoint's key (``MISSION_LLM_API_KEY``) and the prices; agents reach it only through
`workers.calls.WorkerCalls.chat`, never from their context. Opened in the worker's startup (where it
measures the chat template's token allowance, when the server can say it), closed in its shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from config.settings import Settings
from mission.llm import Allowance, Price, measured_allowance
from workers.agents.sdk import ChatRequest, ModelError, ModelNotPriced

log = logging.getLogger("mission.worker")

MAX_RETRY_AFTER = 60.0


class Refused(ModelError):
    """The provider answered without generating (an error status) or could not be reached: the
    call's reservation is released."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True)
class Answer:
    text: str
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    reported: bool  # whether the provider reported usage (else the worst case is charged)


def retry_after(response: httpx.Response) -> float | None:
    """Seconds a ``Retry-After`` header asks for (delta-seconds or an HTTP date)."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return None


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


class ModelProvider:
    """One per worker process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.default_model = settings.llm_model
        self.prices = {name: Price.of(p.input, p.output) for name, p in settings.llm_prices.items()}
        self.allowance = Allowance(settings.llm_prompt_allowance, settings.llm_message_allowance)
        self.slots = asyncio.Semaphore(settings.llm_concurrency)
        self.min_tokens = settings.llm_min_tokens
        self.configured = settings.llm_base_url is not None
        self.settling: set[asyncio.Task[Any]] = set()  # settles of calls cut by a cancel
        headers = {"content-type": "application/json"}
        if settings.llm_api_key is not None:
            headers["authorization"] = f"Bearer {settings.llm_api_key.get_secret_value()}"
        base = (settings.llm_base_url or "http://127.0.0.1:1/v1").rstrip("/") + "/"
        self._client = httpx.AsyncClient(
            base_url=base,
            headers=headers,
            timeout=settings.llm_timeout_seconds,
            limits=httpx.Limits(
                max_connections=settings.llm_concurrency, max_keepalive_connections=settings.llm_concurrency
            ),
        )

    def __repr__(self) -> str:
        return f"ModelProvider(models={sorted(self.prices)})"

    async def start(self) -> None:
        if self.configured:
            with contextlib.suppress(httpx.HTTPError, ValueError, KeyError, TypeError):
                await self._measure()

    def settle_later(self, settle: Coroutine[Any, Any, Any]) -> None:
        """Settle a call cut by a cancel (its reservation stays charged; this records the call)."""
        task = asyncio.create_task(settle)
        self.settling.add(task)
        task.add_done_callback(self.settling.discard)

    async def close(self) -> None:
        if self.settling:  # give cut calls' settles a moment to be recorded
            await asyncio.wait(list(self.settling), timeout=5)
        await self._client.aclose()

    def price(self, model: str) -> Price:
        price = self.prices.get(model)
        if price is None:
            raise ModelNotPriced(f"model {model!r} has no price in MISSION_LLM_PRICES: refused, nothing runs unmetered")
        return price

    async def _measure(self) -> None:
        """Raise the allowance to what the server's chat template adds (llama.cpp answers
        ``/apply-template`` and ``/tokenize`` beside ``/v1``; other providers keep the settings')."""
        root = str(self._client.base_url).rstrip("/").removesuffix("/v1") + "/"
        roles = ["user", "assistant", "user"]
        counts: dict[int, int] = {}
        for n in (1, 3):
            messages = [{"role": role, "content": ""} for role in roles[:n]]
            applied = await self._client.post(root + "apply-template", json={"messages": messages}, timeout=5)
            applied.raise_for_status()
            tokens = await self._client.post(
                root + "tokenize", json={"content": applied.json()["prompt"], "add_special": True}, timeout=5
            )
            tokens.raise_for_status()
            counts[n] = len(tokens.json()["tokens"])
        measured = measured_allowance(counts)
        self.allowance = Allowance(
            max(self.allowance.per_prompt, measured.per_prompt), max(self.allowance.per_message, measured.per_message)
        )
        log.info("chat template allowance: %d tokens per prompt, %d per message", *vars(self.allowance).values())

    async def send(self, model: str, request: ChatRequest, max_tokens: int) -> Answer:
        """One chat completion, retrying 429 (after its Retry-After) and 5xx (with backoff) while the
        request's time allows. `Refused` when nothing was generated; any other exception (a timeout,
        a dropped connection, cancellation) leaves the outcome unknown."""
        if not self.configured:
            raise Refused("no model endpoint: set MISSION_LLM_BASE_URL", retryable=False)
        payload: dict[str, Any] = {"model": model, "messages": request.messages, "max_tokens": max_tokens}
        if request.temperature is not None:
            payload["temperature"] = request.temperature
        if request.response_format is not None:
            payload["response_format"] = request.response_format
        give_up = time.monotonic() + min(
            self.settings.llm_timeout_seconds, (request.deadline - datetime.now(UTC)).total_seconds()
        )
        tries = 0
        while True:
            left = give_up - time.monotonic()
            if left <= 0:  # nothing more is sent
                raise Refused("no time left for the model call before its deadline or timeout")
            try:
                response = await self._client.post("chat/completions", json=payload, timeout=left)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:  # nothing was sent
                error: Refused = Refused(f"model endpoint unreachable: {type(exc).__name__}")
                delay = 0.2 * 2**tries
            else:
                if response.status_code == 200:
                    return self._answer(response)
                error = Refused(
                    f"model endpoint answered {response.status_code}: {response.text[:200]}",
                    retryable=response.status_code in (408, 409, 429) or response.status_code >= 500,
                )
                if not error.retryable:
                    raise error
                delay = retry_after(response) if response.status_code == 429 else None
                if delay is None:
                    delay = 0.2 * 2**tries * (1 + random.random() / 2)
            tries += 1
            if tries > self.settings.llm_max_retries or time.monotonic() + min(delay, MAX_RETRY_AFTER) >= give_up:
                raise error
            await asyncio.sleep(min(delay, MAX_RETRY_AFTER))

    @staticmethod
    def _answer(response: httpx.Response) -> Answer:
        try:
            body = response.json()
            choice = body["choices"][0]
            text = choice["message"].get("content") or ""
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
            raise ModelError(f"the model endpoint's answer is not a chat completion: {exc}") from None
        usage = body.get("usage") if isinstance(body.get("usage"), dict) else None
        details = (usage or {}).get("prompt_tokens_details") or {}
        return Answer(
            text=str(text),
            finish_reason=str(choice.get("finish_reason") or ""),
            prompt_tokens=_int((usage or {}).get("prompt_tokens")),
            completion_tokens=_int((usage or {}).get("completion_tokens")),
            cached_tokens=_int(details.get("cached_tokens") if isinstance(details, dict) else 0),
            reported=usage is not None,
        )
