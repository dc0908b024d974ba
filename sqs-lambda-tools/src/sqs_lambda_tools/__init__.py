"""Local tools for a Python AWS Lambda function that consumes an SQS queue.

An emulator with the project's queues and tables (embedded MiniStack, docker compose, or
``AWS_ENDPOINT_URL``), a local event source mapping, queue commands, packaging, preflight
checks, benchmarks, and a pytest plugin (:mod:`.pytest_plugin`). Everything they know of a
project comes from its settings (:mod:`.project`): ``[tool.sqsl]`` in its
``pyproject.toml``, or its IaC. Run ``sqsl --help``; never part of the Lambda package.
"""
