"""CloudFormation templates in YAML, read as the JSON structure CloudFormation reads.

YAML templates use short tags: ``!Ref X`` is ``{"Ref": "X"}``, ``!GetAtt A.B`` is
``{"Fn::GetAtt": ["A", "B"]}``, ``!Sub ...`` is ``{"Fn::Sub": ...}``, ``!Condition C`` is
``{"Condition": "C"}``. Used by ``deploy-local`` (which sends the template on) and
``preflight`` (which reads its settings). JSON is YAML, so JSON templates read too.
"""

from __future__ import annotations

from typing import Any

import yaml


class _CloudFormationLoader(yaml.SafeLoader):
    """A SafeLoader (no Python objects) that knows CloudFormation's short tags."""


def _intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        return {"Fn::GetAtt": value.split(".", 1)}
    if suffix == "Condition":
        return {"Condition": value}
    return {f"Fn::{suffix}": value}


_CloudFormationLoader.add_multi_constructor("!", _intrinsic)


def load(text: str) -> Any:
    """The parsed template; raises ``yaml.YAMLError`` on text that is not YAML."""
    return yaml.load(text, Loader=_CloudFormationLoader)
