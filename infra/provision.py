"""Creating template.yaml's data resources on the emulator through its own CloudFormation, idempotently,
and resolving each function's environment (Ref / GetAtt / Sub) against the created stack."""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from infra.sam_template import SamTemplate, TemplateError

if TYPE_CHECKING:
    from mypy_boto3_cloudformation import CloudFormationClient
    from mypy_boto3_dynamodb import DynamoDBClient

TEMPLATE_HASH_TAG = "notification-service:template-sha256"
_READY = {"CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE"}


@dataclass(frozen=True)
class Stack:
    name: str
    region: str
    account_id: str
    parameters: dict[str, str]
    physical_ids: dict[str, str]  # logical id -> physical id (table name, queue URL, ...)
    outputs: dict[str, str]


def parameter_env_name(parameter: str) -> str:
    """RedisUrl -> REDIS_URL: a parameter takes its value from the environment variable of that name."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", parameter).upper()


def parameter_values(template: SamTemplate, environ: dict[str, str]) -> dict[str, str]:
    values = {}
    for name, spec in template.parameters.items():
        value = environ.get(parameter_env_name(name), spec.get("Default"))
        if value is not None:
            values[name] = str(value)
    return values


def ensure_stack(
    cloudformation: CloudFormationClient, template: SamTemplate, stack_name: str, parameters: dict[str, str]
) -> Stack:
    """Create the stack, or find it (updating it when template.yaml changed since). Safe to repeat."""
    body = json.dumps(template.data_template(), sort_keys=True)
    # parameters count too: a restart with other values updates the stack instead of keeping old ones
    digest = hashlib.sha256((body + json.dumps(parameters, sort_keys=True)).encode()).hexdigest()
    cfn_parameters: list[Any] = [{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()]
    tags: list[Any] = [{"Key": TEMPLATE_HASH_TAG, "Value": digest}]
    existing = _describe(cloudformation, stack_name)
    if existing is not None and existing["StackStatus"] not in _READY:
        cloudformation.delete_stack(StackName=stack_name)  # a failed create is not rolled back by moto
        existing = None
    if existing is None:
        cloudformation.create_stack(
            StackName=stack_name, TemplateBody=body, Parameters=cfn_parameters, Tags=tags
        )
    elif {t["Key"]: t["Value"] for t in existing.get("Tags", [])}.get(TEMPLATE_HASH_TAG) != digest:
        cloudformation.update_stack(
            StackName=stack_name, TemplateBody=body, Parameters=cfn_parameters, Tags=tags
        )
    waiter_status = _wait_settled(cloudformation, stack_name)
    if waiter_status is None or waiter_status["StackStatus"] not in _READY:
        status = waiter_status["StackStatus"] if waiter_status else "missing"
        reason = (waiter_status or {}).get("StackStatusReason", "")
        raise TemplateError(f"stack {stack_name} is {status} on the emulator {reason}".strip())
    resources = cloudformation.describe_stack_resources(StackName=stack_name)["StackResources"]
    arn_parts = waiter_status["StackId"].split(":")
    return Stack(
        name=stack_name,
        region=arn_parts[3],
        account_id=arn_parts[4],
        parameters={
            **{p["ParameterKey"]: p.get("ParameterValue", "") for p in waiter_status.get("Parameters", [])},
            **parameters,  # what was asked now wins over what an emulator remembered
        },
        physical_ids={r["LogicalResourceId"]: r.get("PhysicalResourceId", "") for r in resources},
        outputs={o["OutputKey"]: o.get("OutputValue", "") for o in waiter_status.get("Outputs", [])},
    )


def _wait_settled(cloudformation: CloudFormationClient, stack_name: str, timeout: float = 120) -> Any:
    """moto creates synchronously; LocalStack and AWS take a while: poll until the stack settles."""
    deadline = time.monotonic() + timeout
    while True:
        stack = _describe(cloudformation, stack_name)
        if stack is None or not stack["StackStatus"].endswith("_IN_PROGRESS") or time.monotonic() > deadline:
            return stack
        time.sleep(0.5)


def enable_time_to_live(dynamodb: DynamoDBClient, template: SamTemplate, stack: Stack) -> None:
    """moto's CloudFormation ignores TimeToLiveSpecification: set it with the API, once."""
    for name, resource in template.data_template()["Resources"].items():
        spec = resource.get("Properties", {}).get("TimeToLiveSpecification")
        if resource["Type"] != "AWS::DynamoDB::Table" or not spec or not spec.get("Enabled"):
            continue
        table = stack.physical_ids[name]
        current = dynamodb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
        if current.get("TimeToLiveStatus") in {"ENABLED", "ENABLING"}:
            continue
        dynamodb.update_time_to_live(
            TableName=table, TimeToLiveSpecification={"AttributeName": spec["AttributeName"], "Enabled": True}
        )


def _describe(cloudformation: CloudFormationClient, stack_name: str) -> Any:
    try:
        stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as exc:
        if "does not exist" in str(exc):
            return None
        raise
    return stacks[0] if stacks else None


class EnvironmentResolver:
    """Resolves Ref, Fn::GetAtt (Arn, QueueName, QueueUrl) and Fn::Sub against a created stack."""

    def __init__(self, stack: Stack, template: SamTemplate) -> None:
        self._stack = stack
        self._resources = template.translated["Resources"]
        self._pseudo = {
            "AWS::Region": stack.region,
            "AWS::AccountId": stack.account_id,
            "AWS::StackName": stack.name,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
        }

    def resolve(self, node: Any) -> str:
        if isinstance(node, str | int | float | bool):
            return str(node).lower() if isinstance(node, bool) else str(node)
        if isinstance(node, dict) and len(node) == 1:
            ((key, value),) = node.items()
            if key == "Ref":
                return self._ref(value)
            if key == "Fn::GetAtt":
                target, attribute = value if isinstance(value, list) else value.split(".", 1)
                return self._get_att(target, attribute)
            if key == "Fn::Sub":
                text, local = (value[0], value[1]) if isinstance(value, list) else (value, {})
                return re.sub(r"\$\{([^}!]+)\}", lambda m: self._sub_var(m.group(1), local), text)
            if key == "Fn::Join":
                return str(value[0]).join(self.resolve(v) for v in value[1])
        raise TemplateError(f"cannot resolve {node!r} for a local function environment")

    def is_resource_reference(self, node: Any) -> bool:
        return bool(isinstance(node, dict) and node.get("Ref") in self._resources) or (
            isinstance(node, dict) and "Fn::GetAtt" in node
        )

    def _sub_var(self, name: str, local: dict[str, Any]) -> str:
        if name in local:
            return self.resolve(local[name])
        if "." in name:
            target, attribute = name.split(".", 1)
            return self._get_att(target, attribute)
        return self._ref(name)

    def _ref(self, name: str) -> str:
        if name in self._pseudo:
            return self._pseudo[name]
        if name in self._stack.parameters:
            return self._stack.parameters[name]
        if name in self._stack.physical_ids:
            return self._stack.physical_ids[name]
        if self._resources.get(name, {}).get("Type") == "AWS::Lambda::Function":
            return name  # the local stack names its functions by their logical ids
        raise TemplateError(f"{name} is not a parameter or a resource of the local stack")

    def _get_att(self, target: str, attribute: str) -> str:
        physical = self._ref(target)
        kind = self._resources.get(target, {}).get("Type")
        region, account = self._stack.region, self._stack.account_id
        if kind == "AWS::SQS::Queue":
            queue_name = physical.rstrip("/").rsplit("/", 1)[-1]
            return {
                "Arn": f"arn:aws:sqs:{region}:{account}:{queue_name}",
                "QueueName": queue_name,
                "QueueUrl": physical,
            }[attribute]
        if kind == "AWS::DynamoDB::Table" and attribute == "Arn":
            return f"arn:aws:dynamodb:{region}:{account}:table/{physical}"
        raise TemplateError(f"Fn::GetAtt {target}.{attribute} is not supported locally")
