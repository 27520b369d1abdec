"""template.yaml read once and translated offline (aws-sam-translator) into plain CloudFormation.

From the translation come (1) the data resources the local stack creates on the emulator, with the
outputs that depend only on them, and (2) each function's handler, code folder, timeout, environment
and event sources: the same facts `sam local` would use.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

PROJECT_ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_PATH = PROJECT_ROOT / "template.yaml"
PLACEHOLDER_CODE = "s3://placeholder/code.zip"

# Resource types the emulator provisions; functions, APIs, roles and mappings run in-process instead.
DATA_RESOURCE_TYPES = frozenset(
    {
        "AWS::DynamoDB::Table",
        "AWS::SQS::Queue",
        "AWS::SQS::QueuePolicy",
        "AWS::Logs::LogGroup",
        "AWS::SSM::Parameter",
        "AWS::SecretsManager::Secret",
        "AWS::SNS::Topic",
        "AWS::S3::Bucket",
    }
)
_SUB_VARIABLE = re.compile(r"\$\{([^}!]+)\}")


class TemplateError(RuntimeError):
    pass


@dataclass(frozen=True)
class EventSource:
    """An SQS event source mapping of a function."""

    queue_logical_id: str
    batch_size: int
    batching_window_seconds: int
    report_batch_item_failures: bool


@dataclass(frozen=True)
class ApiRoute:
    path: str
    method: str


@dataclass(frozen=True)
class Schedule:
    """An EventBridge schedule that invokes a function (`rate(...)` expressions)."""

    name: str
    expression: str

    @property
    def period_seconds(self) -> int:
        match = _RATE.fullmatch(self.expression.strip())
        if match is None:
            raise TemplateError(f"schedule {self.name}: only rate(...) expressions run locally")
        amount, unit = int(match.group(1)), match.group(2).rstrip("s")
        return amount * {"minute": 60, "hour": 3600, "day": 86400}[unit]


_RATE = re.compile(r"rate\((\d+) (minutes?|hours?|days?)\)")


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    code_dir: Path
    handler: str
    runtime: str
    timeout_seconds: int
    memory_mb: int
    environment: dict[str, Any]
    sqs_sources: tuple[EventSource, ...] = ()
    api_routes: tuple[ApiRoute, ...] = ()
    schedules: tuple[Schedule, ...] = ()


@dataclass
class SamTemplate:
    source: dict[str, Any]
    translated: dict[str, Any]
    functions: dict[str, FunctionSpec] = field(default_factory=dict)

    @property
    def parameters(self) -> dict[str, Any]:
        params: dict[str, Any] = self.translated.get("Parameters", {})
        return params

    def data_template(self) -> dict[str, Any]:
        """The translated template cut down to the data resources, and outputs that need only them."""
        resources = self.translated["Resources"]
        kept = {name for name, res in resources.items() if res["Type"] in DATA_RESOURCE_TYPES}
        changed = True
        while changed:  # drop data resources that depend on something dropped
            changed = False
            for name in sorted(kept):
                if not references(resources[name]) <= kept | set(self.parameters) | _PSEUDO:
                    kept.discard(name)
                    changed = True
        outputs = {
            name: out
            for name, out in self.translated.get("Outputs", {}).items()
            if references(out) <= kept | set(self.parameters) | _PSEUDO
        }
        return {
            "AWSTemplateFormatVersion": "2010-09-09",
            "Description": self.translated.get("Description", ""),
            "Parameters": copy.deepcopy(self.parameters),
            "Resources": {name: copy.deepcopy(resources[name]) for name in sorted(kept)},
            "Outputs": copy.deepcopy(outputs),
        }

    def function(self, logical_id: str) -> FunctionSpec:
        try:
            return self.functions[logical_id]
        except KeyError:
            known = ", ".join(sorted(self.functions))
            raise TemplateError(f"no function {logical_id!r} in template.yaml (functions: {known})") from None


_PSEUDO = {
    "AWS::Region",
    "AWS::AccountId",
    "AWS::StackName",
    "AWS::Partition",
    "AWS::URLSuffix",
    "AWS::StackId",
    "AWS::NoValue",
}


def references(node: Any) -> set[str]:
    """Logical ids and parameters a piece of template refers to (Ref, GetAtt, Sub, DependsOn)."""
    return set(_references(node))


def _references(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                yield value
            elif key == "Fn::GetAtt":
                target = value[0] if isinstance(value, list) else str(value).split(".")[0]
                yield target
            elif key == "Fn::Sub":
                text, local = (value[0], value[1]) if isinstance(value, list) else (value, {})
                for var in _SUB_VARIABLE.findall(text):
                    if var.split(".")[0] not in local:
                        yield var.split(".")[0]
                yield from _references(local)
            elif key == "DependsOn":
                yield from ([value] if isinstance(value, str) else value)
            else:
                yield from _references(value)
    elif isinstance(node, list):
        for item in node:
            yield from _references(item)


def load(path: Path = TEMPLATE_PATH, region: str = "us-east-1") -> SamTemplate:
    from samtranslator.public.parser import Parser
    from samtranslator.public.translator import Translator
    from samtranslator.yaml_helper import yaml_parse

    source = yaml_parse(path.read_text())
    prepared = copy.deepcopy(source)
    code_dirs: dict[str, Path] = {}
    for name, res in prepared.get("Resources", {}).items():
        props = res.setdefault("Properties", {})
        if res["Type"] == "AWS::Serverless::Function":
            code_dirs[name] = path.parent / str(props.get("CodeUri", ""))
            props["CodeUri"] = PLACEHOLDER_CODE
        elif res["Type"] == "AWS::Serverless::LayerVersion":
            props["ContentUri"] = PLACEHOLDER_CODE
    translator = Translator(None, Parser(), boto_session=boto3.Session(region_name=region))
    try:
        translated = translator.translate(prepared, parameter_values={}, get_managed_policy_map=lambda: {})
    except Exception as exc:  # samtranslator raises its own InvalidDocumentException family
        raise TemplateError(f"template.yaml does not translate: {exc}") from exc
    template = SamTemplate(source=source, translated=translated)
    template.functions = _functions(source, translated, code_dirs)
    return template


def _functions(
    source: dict[str, Any], translated: dict[str, Any], code_dirs: dict[str, Path]
) -> dict[str, FunctionSpec]:
    resources = translated["Resources"]
    specs: dict[str, FunctionSpec] = {}
    for name, code_dir in code_dirs.items():
        props = resources[name]["Properties"]
        sqs = []
        for res in resources.values():
            if res["Type"] != "AWS::Lambda::EventSourceMapping":
                continue
            mapping = res["Properties"]
            if mapping.get("FunctionName") != {"Ref": name}:
                continue
            queue = next(iter(references(mapping.get("EventSourceArn"))), "")
            sqs.append(
                EventSource(
                    queue_logical_id=queue,
                    batch_size=int(mapping.get("BatchSize", 10)),
                    batching_window_seconds=int(mapping.get("MaximumBatchingWindowInSeconds", 0)),
                    report_batch_item_failures="ReportBatchItemFailures"
                    in mapping.get("FunctionResponseTypes", []),
                )
            )
        routes = []
        schedules = []
        for event_name, event in source["Resources"][name].get("Properties", {}).get("Events", {}).items():
            if event.get("Type") == "Api":
                routes.append(ApiRoute(event["Properties"]["Path"], event["Properties"]["Method"].upper()))
            elif event.get("Type") == "Schedule":
                schedules.append(Schedule(event_name, str(event["Properties"]["Schedule"])))
        specs[name] = FunctionSpec(
            logical_id=name,
            code_dir=code_dir,
            handler=props["Handler"],
            runtime=props.get("Runtime", ""),
            timeout_seconds=int(props.get("Timeout", 3)),
            memory_mb=int(props.get("MemorySize", 128)),
            environment=dict(props.get("Environment", {}).get("Variables", {})),
            sqs_sources=tuple(sqs),
            api_routes=tuple(routes),
            schedules=tuple(schedules),
        )
    return specs
