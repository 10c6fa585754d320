"""Agent references: a built-in name (`finance.liquidate`) or an import path (`pkg.module:function`).

Built-in names map to ``workers.agents.<module>:<function>`` by convention; the module is found by
name at run time, so this package never imports the workers package itself.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Coroutine
from functools import cache
from typing import Any

from mission.errors import AgentNotFound

BUILTIN_PACKAGE = "workers.agents"

AgentFunction = Callable[[Any], Coroutine[Any, Any, Any]]
# Built-in names that do not follow the `department.agent` convention.
ALIASES = {"llm": f"{BUILTIN_PACKAGE}.model:llm_agent"}


def import_path(ref: str) -> tuple[str, str]:
    """The (module, function) an agent reference names."""
    ref = ALIASES.get(ref, ref)
    if ":" in ref:
        module, _, function = ref.partition(":")
        return module, function
    module, dot, function = ref.rpartition(".")
    if not dot:
        raise AgentNotFound(ref, "a built-in name has the form `department.agent`")
    return f"{BUILTIN_PACKAGE}.{module}", function


@cache
def resolve_agent(ref: str) -> AgentFunction:
    """The coroutine function behind a reference; `AgentNotFound` says why when there is none."""
    module_name, function_name = import_path(ref)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise AgentNotFound(ref, f"module {module_name} cannot be imported ({exc})") from None
    function = getattr(module, function_name, None)
    if function is None:
        raise AgentNotFound(ref, f"module {module_name} has no {function_name}")
    if not inspect.iscoroutinefunction(function):
        raise AgentNotFound(ref, f"{module_name}:{function_name} is not an async function")
    agent: AgentFunction = function
    return agent
