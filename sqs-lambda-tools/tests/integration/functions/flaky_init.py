"""A function whose first environment starts and whose later ones do not: its first
invocation leaves the file ``PROBE_MARKER`` behind, then ends its process; any init after
that fails."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

MARKER = Path(os.environ["PROBE_MARKER"])
if MARKER.exists():
    raise RuntimeError("the configuration went away: this init fails")


def handler(event: dict[str, Any], context: Any) -> object:
    MARKER.touch()
    os._exit(1)
