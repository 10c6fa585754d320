"""What the fixtures, the child-process harness and the tests share: paths and test settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
TEST_TEMPLATES = Path(__file__).resolve().parent / "templates.json"

# Fast leases, retries and reaping so fault tests finish in seconds.
TEST_SETTINGS: dict[str, Any] = {
    "templates_path": TEST_TEMPLATES,
    "lease_seconds": 1.5,
    "reap_every_seconds": 1,
    "retry_backoff_seconds": 0.05,
    "retry_backoff_max_seconds": 0.2,
}
