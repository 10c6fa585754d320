"""The model agent (`"agent": "llm"`): renders its template's `llm` block and asks the model.

Placeholders are paths of keys: ``{{ inputs.portfolio }}``, ``{{ upstream.analyst.ranked }}``; they
are looked up in plain data only (dict keys, list indexes), never attributes or format specs, and a
value that is not a string is inserted as compact JSON. What a value brings in is not rendered again.
"""

from __future__ import annotations

import json
from typing import Any

from mission.models import PLACEHOLDER
from workers.agents.sdk import AgentContext, PermanentError

MAX_VALUE_CHARS = 8_000  # one placeholder's share of a prompt


def lookup(path: str, data: dict[str, Any]) -> Any:
    value: Any = data
    for part in path.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            raise PermanentError(f"placeholder {{{{ {path} }}}}: nothing at {part!r}")
    return value


def render(text: str, data: dict[str, Any]) -> str:
    """``text`` with each placeholder replaced by its value, in one pass."""

    def value(match: Any) -> str:
        found = lookup(match.group(1), data)
        shown = found if isinstance(found, str) else json.dumps(found, separators=(",", ":"), default=str)
        return shown[:MAX_VALUE_CHARS]

    return PLACEHOLDER.sub(value, text)


def response_format(spec: dict[str, Any]) -> dict[str, Any] | None:
    if spec.get("output") != "json":
        return None
    schema = spec.get("json_schema")
    if schema is None:
        return {"type": "json_object"}
    return {"type": "json_schema", "json_schema": {"name": "output", "schema": schema, "strict": True}}


async def llm_agent(ctx: AgentContext) -> dict[str, Any]:
    spec = ctx.llm_spec
    if not spec:
        raise PermanentError('a model agent needs its template\'s "llm" block')
    data = {"inputs": ctx.inputs, "upstream": ctx.upstream}
    messages = []
    if spec.get("system"):
        messages.append({"role": "system", "content": render(spec["system"], data)})
    messages.append({"role": "user", "content": render(spec["prompt"], data)})
    reply = await ctx.llm.chat(
        messages,
        model=spec.get("model"),
        max_tokens=int(spec.get("max_tokens", 256)),
        temperature=spec.get("temperature"),
        response_format=response_format(spec),
    )
    usage = reply.usage
    result: dict[str, Any] = {
        "model": reply.model,
        "usage": {
            "promptTokens": usage.prompt_tokens,
            "completionTokens": usage.completion_tokens,
            "cost": str(usage.cost),
        },
        "finishReason": reply.finish_reason,
    }
    if spec.get("output") == "json":
        result["json"] = reply.json
    else:
        result["text"] = reply.text
    return result
