"""Synthesize the stack: ``python -m <package>_infra.app`` (``make synth``, or ``cdk synth``
and ``cdk deploy`` through cdk.json) writes the cloud assembly to ``build/cdk.out``.

The function's code is ``build/lambda/``, the artifact ``make package`` builds (the runtime
package and its runtime dependencies, nothing else); the app refuses to run without it
rather than deploy a function that cannot import its handler.
"""

from __future__ import annotations

import os
import sys

import aws_cdk as cdk
from aws_cdk import aws_lambda as lambda_

from .config import CDK_OUT_DIR, CONFIG, LAMBDA_ASSET_DIR
from .stack import ConsumerStack


class MissingArtifactError(RuntimeError):
    """build/lambda/ does not hold the runtime package."""


def check_artifact() -> None:
    """Fail, saying what to run, when build/lambda/ holds no handler to deploy."""
    handler = LAMBDA_ASSET_DIR / CONFIG.package_name / "handler.py"
    if not handler.is_file():
        raise MissingArtifactError(
            f"the Lambda artifact is missing: {handler} does not exist;"
            " run `make package` first (it builds build/lambda/), then synthesize again"
        )


def build_app() -> cdk.App:
    """The app with the service's stack, its code from build/lambda/."""
    check_artifact()
    # The CDK CLI passes its output folder (cdk.json's "output") in CDK_OUTDIR; run
    # directly, the app writes to the same folder rather than to a temporary one.
    app = cdk.App(outdir=None if os.environ.get("CDK_OUTDIR") else str(CDK_OUT_DIR))
    ConsumerStack(
        app,
        CONFIG.stack_name,
        config=CONFIG,
        code=lambda_.Code.from_asset(str(LAMBDA_ASSET_DIR)),
        # The region of the answers; the account of the credentials the CLI resolved
        # (none when synthesizing offline: the template then reads it at deploy time).
        env=cdk.Environment(account=os.environ.get("CDK_DEFAULT_ACCOUNT"), region=CONFIG.region),
    )
    return app


def main() -> int:
    try:
        app = build_app()
    except MissingArtifactError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    assembly = app.synth()
    print(f"synthesized to {assembly.directory}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
