"""A function whose module cannot be imported: its init fails, every time."""

from __future__ import annotations

from typing import Any


def _settings() -> dict[str, str]:
    raise LookupError("ORDERS_TABLE_NAME is not set: the module cannot start")


SETTINGS = _settings()


def handler(event: dict[str, Any], context: Any) -> object:
    return None
