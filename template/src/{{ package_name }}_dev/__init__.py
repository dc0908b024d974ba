"""Local development tools: emulator, local event source mapping, queue commands.

Never part of the Lambda package (only ``src/<package>/`` ships); run it with
``python -m <package>_dev --help`` or the Makefile targets.
"""
