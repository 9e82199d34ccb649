"""Keeping secrets (W&B API keys, hub tokens) out of run records, run names and W&B configs.

A config key whose last part names a secret (`api_key`, `token`, `hf_token`, `secret`,
`password` ...) has its value replaced by "***"; so has any text that contains the value
of a secret environment variable (WANDB_API_KEY, HF_TOKEN ...), wherever it appears.
"""

from __future__ import annotations

import os
import re
from typing import Any

REDACTED = "***"
SECRET_KEY = re.compile(r"^(.*[_-])?(api[_-]?key|token|secret|password|passwd|credentials?)$", re.IGNORECASE)
SECRET_ENV = (
    "WANDB_API_KEY",
    "HF_TOKEN",
    "HUGGING_FACE_HUB_TOKEN",
    "HUGGINGFACE_TOKEN",
    "HF_API_TOKEN",
    "GITHUB_TOKEN",
)


def is_secret_key(key: str) -> bool:
    """`logger.api_key`, `hf_token`: the last dotted part of the key names a secret."""
    return bool(SECRET_KEY.match(str(key).lstrip("+~").rsplit(".", 1)[-1]))


def _secret_values() -> list[str]:
    # short values would redact innocent text; real keys and tokens are long
    return [v for k in SECRET_ENV if len(v := os.environ.get(k, "")) >= 8]


def _scrub(text: str, values: list[str]) -> str:
    for v in values:
        text = text.replace(v, REDACTED)
    return text


def redact(obj: Any, values: list[str] | None = None) -> Any:
    """A copy of a config-like structure (dicts, lists, strings) with the secrets replaced."""
    values = _secret_values() if values is None else values
    if isinstance(obj, dict):
        return {k: REDACTED if is_secret_key(k) and v is not None else redact(v, values) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [redact(v, values) for v in obj]
    if isinstance(obj, str):
        return _scrub(obj, values)
    return obj


def redact_override(override: str) -> str:
    """`logger.api_key=abc` -> `logger.api_key=***`; other overrides keep their value."""
    key, sep, _ = override.partition("=")
    if sep and is_secret_key(key):
        return f"{key}={REDACTED}"
    return _scrub(override, _secret_values())
