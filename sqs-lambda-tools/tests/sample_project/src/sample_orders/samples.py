"""Sample orders: what `sqsl send --sample` and the events are made of."""

from __future__ import annotations

USERS = ("u-1", "u-2", "u-3")


def sample_order(number: int, run_id: str) -> dict[str, object]:
    """The ``number``-th sample order of run ``run_id`` (numbers start at 1)."""
    return {"orderId": f"o-{run_id}-{number:03d}", "userId": USERS[(number - 1) % len(USERS)]}
