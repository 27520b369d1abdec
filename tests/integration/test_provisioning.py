"""Resources come from template.yaml itself, created through the emulator's CloudFormation."""

from __future__ import annotations

import copy
import json

import boto3
import pytest

from infra import sam_template
from infra.emulator import Emulator
from infra.local_stack import function_environment
from infra.provision import (
    TEMPLATE_HASH_TAG,
    EnvironmentResolver,
    Stack,
    ensure_stack,
    parameter_env_name,
    parameter_values,
)
from infra.sam_template import TemplateError, references


def test_functions_are_read_from_the_template(template: sam_template.SamTemplate) -> None:
    dispatch = template.function("DispatchFunction")
    assert dispatch.handler == "app.lambda_handler"
    assert dispatch.code_dir.name == "dispatch"
    assert dispatch.timeout_seconds == 60
    (source,) = dispatch.sqs_sources
    assert (source.queue_logical_id, source.batch_size, source.report_batch_item_failures) == (
        "DeliveryQueue",
        10,
        True,
    )
    api = template.function("ApiFunction")
    assert {(r.path, r.method) for r in api.api_routes} == {
        ("/", "ANY"),
        ("/{proxy+}", "ANY"),
        *[
            (path, "GET")
            for path in ("/health", "/ready", "/docs", "/openapi.json", "/admin", "/admin/{name}")
        ],
        ("/api/v1/providers/{proxy+}", "POST"),
    }
    assert api.environment["TABLE_NAME"] == {"Ref": "NotificationsTable"}
    sweeper = template.function("SweeperFunction")
    (schedule,) = sweeper.schedules
    assert (schedule.expression, schedule.period_seconds) == ("rate(1 minute)", 60)
    with pytest.raises(TemplateError, match="no function 'Nope'"):
        template.function("Nope")


def test_schedule_rates_convert_to_seconds_and_cron_is_refused() -> None:
    assert sam_template.Schedule("a", "rate(5 minutes)").period_seconds == 300
    assert sam_template.Schedule("b", "rate(1 hour)").period_seconds == 3600
    assert sam_template.Schedule("c", "rate(2 days)").period_seconds == 172800
    with pytest.raises(TemplateError, match="only rate"):
        _ = sam_template.Schedule("d", "cron(0 12 * * ? *)").period_seconds


def test_the_data_template_keeps_only_data_resources_and_their_outputs(
    template: sam_template.SamTemplate,
) -> None:
    data = template.data_template()
    assert set(data["Resources"]) == {
        "NotificationsTable",
        "DeliveryQueue",
        "DeliveryDeadLetterQueue",
        "WebhookQueue",
        "WebhookDeadLetterQueue",
    }
    assert set(data["Outputs"]) == {
        "NotificationsTableName",
        "DeliveryQueueUrl",
        "DeliveryDeadLetterQueueUrl",
        "WebhookQueueUrl",
    }
    assert "MaxRetryAttempts" in data["Parameters"]


def test_references_cover_ref_getatt_sub_and_depends_on() -> None:
    node = {
        "A": {"Ref": "Table"},
        "B": {"Fn::GetAtt": ["Queue", "Arn"]},
        "C": {"Fn::Sub": "${Api}.execute-api.${AWS::Region}/${Stage.Name}"},
        "D": {"Fn::Sub": ["${Local}-${Other}", {"Local": {"Ref": "Param"}}]},
        "DependsOn": ["Role"],
        "E": {"Fn::GetAtt": "Dlq.Arn"},
    }
    assert references(node) == {
        "Table",
        "Queue",
        "Api",
        "AWS::Region",
        "Stage",
        "Other",
        "Param",
        "Role",
        "Dlq",
    }


def test_stack_creation_is_idempotent_and_faithful(
    emulator: Emulator, template: sam_template.SamTemplate, stack: Stack
) -> None:
    # GIVEN a stack created from the template WHEN it is ensured again
    cloudformation = boto3.client("cloudformation", endpoint_url=emulator.endpoint_url)
    again = ensure_stack(cloudformation, template, stack.name, parameter_values(template, {}))
    # THEN the same resources are found, not created twice
    assert again.physical_ids == stack.physical_ids
    # AND they are what template.yaml declares
    sqs = boto3.client("sqs", endpoint_url=emulator.endpoint_url)
    attributes = sqs.get_queue_attributes(QueueUrl=stack.outputs["DeliveryQueueUrl"], AttributeNames=["All"])[
        "Attributes"
    ]
    assert attributes["VisibilityTimeout"] == "360"
    redrive = json.loads(attributes["RedrivePolicy"])
    assert redrive["maxReceiveCount"] == 5
    assert redrive["deadLetterTargetArn"].endswith(
        stack.outputs["DeliveryDeadLetterQueueUrl"].rsplit("/", 1)[1]
    )
    dynamodb = boto3.client("dynamodb", endpoint_url=emulator.endpoint_url)
    table = dynamodb.describe_table(TableName=stack.outputs["NotificationsTableName"])["Table"]
    assert [(k["AttributeName"], k["KeyType"]) for k in table["KeySchema"]] == [
        ("pk", "HASH"),
        ("sk", "RANGE"),
    ]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    ttl = dynamodb.describe_time_to_live(TableName=stack.outputs["NotificationsTableName"])
    assert ttl["TimeToLiveDescription"]["AttributeName"] == "expires_at"


def test_a_changed_template_updates_the_stack(
    emulator: Emulator, template: sam_template.SamTemplate, stack: Stack
) -> None:
    changed = copy.copy(template)
    changed.translated = copy.deepcopy(template.translated)
    changed.translated["Description"] = "changed"
    cloudformation = boto3.client("cloudformation", endpoint_url=emulator.endpoint_url)
    updated = ensure_stack(cloudformation, changed, stack.name, parameter_values(template, {}))
    assert updated.physical_ids["NotificationsTable"] == stack.physical_ids["NotificationsTable"]
    tags = cloudformation.describe_stacks(StackName=stack.name)["Stacks"][0]["Tags"]
    before = cloudformation.describe_stacks(StackName=stack.name)["Stacks"][0]["StackStatus"]
    assert before == "UPDATE_COMPLETE"
    assert {t["Key"]: t["Value"] for t in tags}[TEMPLATE_HASH_TAG] != ""


def test_function_environment_resolves_against_the_stack(
    template: sam_template.SamTemplate, stack: Stack
) -> None:
    resolver = EnvironmentResolver(stack, template)
    environ = {"MAX_RETRY_ATTEMPTS": "5", "TABLE_NAME": "not-this-one", "LOG_LEVEL": "DEBUG"}
    env = function_environment(template.function("DispatchFunction"), resolver, environ)
    assert env["TABLE_NAME"] == stack.outputs["NotificationsTableName"]
    assert env["QUEUE_URL"] == stack.outputs["DeliveryQueueUrl"]
    assert env["MAX_RETRY_ATTEMPTS"] == "5"
    assert env["RETRY_BACKOFF_BASE"] == "2"
    assert env["LOG_LEVEL"] == "DEBUG"
    assert resolver.resolve({"Fn::GetAtt": ["DeliveryQueue", "QueueName"]}) in env["QUEUE_URL"]
    assert resolver.resolve({"Fn::Sub": "${AWS::Region}/${DeliveryQueue.Arn}"}).startswith(
        "us-east-1/arn:aws:sqs"
    )
    assert resolver.resolve({"Fn::Join": ["-", ["a", {"Ref": "LogLevel"}]]}) == "a-INFO"
    assert resolver.resolve({"Fn::GetAtt": ["NotificationsTable", "Arn"]}).endswith(env["TABLE_NAME"])
    with pytest.raises(TemplateError):
        resolver.resolve({"Ref": "Missing"})


def test_parameters_take_values_from_the_environment(template: sam_template.SamTemplate) -> None:
    assert parameter_env_name("RedisUrl") == "REDIS_URL"
    assert parameter_env_name("MaxRetryAttempts") == "MAX_RETRY_ATTEMPTS"
    values = parameter_values(template, {"RETRY_BACKOFF_BASE": "3"})
    assert values["RetryBackoffBase"] == "3"
    assert values["MaxRetryAttempts"] == "3"
