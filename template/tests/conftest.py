"""What every test of this project shares."""

from __future__ import annotations

import os

# The CLI prints rich tables sized to the terminal. Tests read them through a pipe, which
# rich takes as 80 columns: give them room, so long resource names are printed whole.
os.environ["COLUMNS"] = "200"
