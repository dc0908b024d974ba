"""Sample orders: the bodies of `make local`, `make events`, `sqsl send --sample` and the tests.

Next to the schema (``model.py``) on purpose: a field added to :class:`~.model.Order` is
added here too, then ``make events`` writes the sample events again.
"""

from __future__ import annotations

#: The users who place the sample orders: on a FIFO queue, one message group each.
USERS = ("u-1", "u-2", "u-3")


def sample_order(number: int, run_id: str) -> dict[str, object]:
    """The body of the ``number``-th distinct sample order of run ``run_id`` (from 1).

    >>> sample_order(2, "r1")
    {'orderId': 'o-r1-002', 'userId': 'u-2'}
    """
    return {"orderId": f"o-{run_id}-{number:03d}", "userId": USERS[(number - 1) % len(USERS)]}
