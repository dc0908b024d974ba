"""``python -m sqs_lambda_tools``: the same as ``sqsl``."""

from .cli import main

main()
