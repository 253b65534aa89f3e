"""Reading template.yaml as CloudFormation does, for local stacks and template tests.

``load_template`` parses the short-form intrinsics (``!Ref``, ``!Sub``, ``!GetAtt``, ...).
``Resolver`` evaluates the handful of intrinsics the local stack needs (parameters, pseudo
parameters, conditions, references to resources it created), so that the demo and the tests
build their resources and environment from the template itself instead of a second list
that could drift from it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

_PLAIN_INTRINSICS = ("Ref", "Condition")
_FN_INTRINSICS = (
    "Sub",
    "GetAtt",
    "If",
    "Not",
    "Equals",
    "Select",
    "Split",
    "Join",
    "FindInMap",
    "GetAZs",
    "Base64",
    "ImportValue",
    "And",
    "Or",
    "Cidr",
)


class CloudFormationLoader(yaml.SafeLoader):
    """PyYAML with CloudFormation's short-form intrinsic tags."""


def _constructor(tag: str) -> Callable[[yaml.SafeLoader, yaml.Node], dict[str, Any]]:
    key = tag if tag in _PLAIN_INTRINSICS else f"Fn::{tag}"

    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
        value: Any
        if isinstance(node, yaml.ScalarNode):
            value = loader.construct_scalar(node)
            if tag == "GetAtt":
                value = str(value).split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            assert isinstance(node, yaml.MappingNode)  # noqa: S101 - the only node left
            value = loader.construct_mapping(node, deep=True)
        return {key: value}

    return construct


for _tag in (*_PLAIN_INTRINSICS, *_FN_INTRINSICS):
    CloudFormationLoader.add_constructor(f"!{_tag}", _constructor(_tag))


def load_template(path: Path) -> dict[str, Any]:
    document = yaml.load(path.read_text("utf-8"), Loader=CloudFormationLoader)  # noqa: S506
    if not isinstance(document, dict):
        raise TypeError(f"{path} is not a CloudFormation template (not a YAML mapping)")
    return document


@dataclass
class Resolver:
    """Evaluates intrinsics against parameter values and the resources made so far.

    ``physical`` maps a logical id to what ``Ref`` returns (a bucket name, a queue URL, a
    table name, a topic or secret ARN); ``attributes`` maps (logical id, attribute) to what
    ``GetAtt`` returns.
    """

    template: dict[str, Any]
    parameters: dict[str, str] = field(default_factory=dict)
    region: str = "us-east-1"
    account: str = "123456789012"
    stack_name: str = "achieveit-sync-local"
    physical: dict[str, str] = field(default_factory=dict)
    attributes: dict[tuple[str, str], str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, spec in self.template.get("Parameters", {}).items():
            self.parameters.setdefault(name, str(spec.get("Default", "")))

    @property
    def stack_id(self) -> str:
        return (
            f"arn:aws:cloudformation:{self.region}:{self.account}:stack/"
            f"{self.stack_name}/0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d"
        )

    def condition(self, name: str) -> bool:
        return bool(self.resolve(self.template["Conditions"][name]))

    def resolve(self, value: Any) -> Any:  # noqa: PLR0911, PLR0912 - one branch per intrinsic
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) != 1:
            return {k: self.resolve(v) for k, v in value.items()}
        [(key, argument)] = value.items()
        if key == "Ref":
            return self._ref(argument)
        if key == "Condition":
            return self.condition(argument)
        if key == "Fn::GetAtt":
            logical, attribute = argument
            return self.attributes[(logical, attribute)]
        if key == "Fn::Sub":
            return self._sub(argument)
        if key == "Fn::If":
            condition, if_true, if_false = argument
            return self.resolve(if_true if self.condition(condition) else if_false)
        if key == "Fn::Equals":
            left, right = (self.resolve(a) for a in argument)
            return str(left) == str(right)
        if key == "Fn::Not":
            return not self.resolve(argument[0])
        if key == "Fn::And":
            return all(self.resolve(a) for a in argument)
        if key == "Fn::Or":
            return any(self.resolve(a) for a in argument)
        if key == "Fn::Select":
            index, items = argument
            return self.resolve(items)[int(self.resolve(index))]
        if key == "Fn::Split":
            separator, text = argument
            return str(self.resolve(text)).split(separator)
        if key == "Fn::Join":
            separator, items = argument
            return separator.join(str(i) for i in self.resolve(items))
        return {key: self.resolve(argument)}

    def _ref(self, name: str) -> Any:
        pseudo = {
            "AWS::Region": self.region,
            "AWS::AccountId": self.account,
            "AWS::StackName": self.stack_name,
            "AWS::StackId": self.stack_id,
            "AWS::Partition": "aws",
            "AWS::NoValue": None,
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        return self.physical[name]

    def _sub(self, argument: Any) -> str:
        text, variables = (argument, {}) if isinstance(argument, str) else argument
        values: Mapping[str, Any] = {k: self.resolve(v) for k, v in variables.items()}

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in values:
                return str(values[name])
            if "." in name:
                logical, attribute = name.split(".", 1)
                return str(self.attributes[(logical, attribute)])
            return str(self._ref(name))

        return re.sub(r"\$\{([^}!]+)\}", substitute, text)

    def function_environment(self, logical_id: str) -> dict[str, str]:
        """A function's environment variables: the template's Globals, then its own."""
        global_variables = (
            self.template.get("Globals", {})
            .get("Function", {})
            .get("Environment", {})
            .get("Variables", {})
        )
        own = (
            self.template["Resources"][logical_id]["Properties"]
            .get("Environment", {})
            .get("Variables", {})
        )
        merged = {**global_variables, **own}
        return {name: str(self.resolve(value)) for name, value in merged.items()}
