"""The tools' own constants: what is the same for every project they serve.

A project's settings (names, limits, the function's environment) are not here: they
come from the project, through :func:`.project.current`.
"""

from __future__ import annotations

ACCOUNT_ID = "000000000000"  # what the emulators report; AWS gives the real one

# The emulators' default ports: LocalStack's edge port, used by MiniStack too.
DEFAULT_EMULATOR_PORT = 4566
MINISTACK_VERSION = "1.5.33"
LOCALSTACK_IMAGE = "localstack/localstack:4.14.0"
