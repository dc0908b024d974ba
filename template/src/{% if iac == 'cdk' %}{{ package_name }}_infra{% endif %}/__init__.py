"""The CDK app of this service: the same resources as the answers declare, never shipped.

``stack.py`` declares the resources, ``config.py`` holds the answers they come from and
``app.py`` synthesizes the stack to ``build/cdk.out`` (``make synth``; ``cdk deploy``).
The Lambda artifact holds only the runtime package: this package is local tooling.
"""

from __future__ import annotations

import os

# aws-cdk-lib runs on Node.js through jsii, which prints a screen-wide banner on every run
# when the machine's Node.js major version has reached its end of life (Node 20 here). The
# variable silences that banner for Node 20 only, before aws_cdk starts its Node process;
# any other version warning (untested or known-broken Node) still shows.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
