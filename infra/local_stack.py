"""The whole service on this machine: emulator + resources from template.yaml + Redis + API Gateway
+ SQS event source, the handlers running in-process exactly as template.yaml declares them."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

import boto3

from infra import sam_template
from infra.api_gateway import InstancePool, LocalApiGateway
from infra.emulator import Emulator, configure_aws_environment, start_emulator
from infra.lambda_runtime import HandlerInstance, WorkerProcess
from infra.log_shipping import CloudWatchLogShipper
from infra.provision import (
    EnvironmentResolver,
    Stack,
    enable_time_to_live,
    ensure_stack,
    parameter_values,
)
from infra.redis_server import RedisHandle, ensure_redis
from infra.sam_template import ApiRoute
from infra.schedule_source import ScheduleSource
from infra.sinks import DEFAULT_INBOX, Inbox, Sinks
from infra.sqs_event_source import SqsEventSource

DEFAULT_REDIS_URL = "redis://localhost:6379/0"
# Set for every local handler: no X-Ray daemon here; metrics flush as EMF log lines.
LOCAL_RUNTIME_ENV = {"POWERTOOLS_TRACE_DISABLED": "true", "AWS_SAM_LOCAL": "true"}


@dataclass
class LocalStackConfig:
    host: str = "127.0.0.1"
    port: int = 8000
    emulator_port: int = 4566
    stack_name: str = "notification-service-local"
    api_instances: int = 4
    dispatch_pollers: int = 2
    serve: bool = True
    sinks: bool = False  # start the SMTP / Twilio / Telegram peers and point the real providers at them
    inbox: Path = DEFAULT_INBOX
    schedule_period_seconds: float | None = None  # None: each schedule's own rate from template.yaml


@dataclass
class LocalStack:
    config: LocalStackConfig = field(default_factory=LocalStackConfig)
    emulator: Emulator | None = None
    redis: RedisHandle | None = None
    stack: Stack | None = None
    template: sam_template.SamTemplate | None = None
    gateway: LocalApiGateway | None = None
    pollers: list[SqsEventSource] = field(default_factory=list)
    schedules: list[ScheduleSource] = field(default_factory=list)
    workers: list[WorkerProcess] = field(default_factory=list)
    environment: dict[str, str] = field(default_factory=dict)
    sinks: Sinks | None = None
    log_shipper: CloudWatchLogShipper | None = None
    _saved_environment: dict[str, str] | None = None

    def start(self) -> LocalStack:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        self._saved_environment = dict(os.environ)  # restored by stop(): a second stack starts clean
        # Webhooks: callback URLs on this machine are allowed (the local receivers), and signed with
        # WEBHOOK_SECRET, or with one made for this run (the start-up banner shows it).
        os.environ.setdefault("ALLOW_PRIVATE_WEBHOOKS", "true")
        if not os.environ.get("WEBHOOK_SECRET"):
            os.environ["WEBHOOK_SECRET"] = "whsec_" + secrets.token_urlsafe(24)
        if self.config.sinks:
            self.sinks = Sinks(Inbox(self.config.inbox)).start()
            os.environ.update(self.sinks.provider_environment())
            if self.config.port:  # the Twilio peer's status callbacks come back to this API
                host = "127.0.0.1" if self.config.host == "0.0.0.0" else self.config.host
                os.environ.setdefault("TWILIO_STATUS_CALLBACK_BASE", f"http://{host}:{self.config.port}")
        self.emulator = start_emulator(os.environ.get("AWS_ENDPOINT_URL"), port=self.config.emulator_port)
        configure_aws_environment(self.emulator.endpoint_url)
        self.redis = ensure_redis(os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL)
        os.environ["REDIS_URL"] = self.redis.url
        region = os.environ["AWS_REGION"]
        self.template = template = sam_template.load(region=region)
        cloudformation = boto3.client("cloudformation", endpoint_url=self.emulator.endpoint_url)
        self.stack = stack = ensure_stack(
            cloudformation, template, self.config.stack_name, parameter_values(template, dict(os.environ))
        )
        enable_time_to_live(
            boto3.client("dynamodb", endpoint_url=self.emulator.endpoint_url), template, stack
        )
        resolver = EnvironmentResolver(stack, template)
        self.environment = {
            name: value
            for spec in template.functions.values()
            for name, value in function_environment(spec, resolver, dict(os.environ)).items()
        }
        if self.config.serve:
            self._serve(template, stack)

    def _serve(self, template: sam_template.SamTemplate, stack: Stack) -> None:
        assert self.emulator is not None
        self.log_shipper = CloudWatchLogShipper(boto3.client("logs", endpoint_url=self.emulator.endpoint_url))
        self.log_shipper.start()
        resolver = EnvironmentResolver(stack, template)
        environ = dict(os.environ)
        starting: list[WorkerProcess] = []

        def workers(spec: sam_template.FunctionSpec, count: int) -> list[WorkerProcess]:
            made = [
                WorkerProcess(
                    spec, function_environment(spec, resolver, environ), spec.logical_id, self._log_line
                )
                for _ in range(count)
            ]
            for worker in made:
                worker.start()
            starting.extend(made)
            self.workers.extend(made)
            return made

        routes: list[tuple[ApiRoute, InstancePool]] = []
        sqs = boto3.client("sqs", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
        for spec in template.functions.values():
            if spec.api_routes:
                pool = InstancePool([w.invoke for w in workers(spec, self.config.api_instances)])
                routes.extend((route, pool) for route in spec.api_routes)
            for source in spec.sqs_sources:
                queue_arn = resolver.resolve({"Fn::GetAtt": [source.queue_logical_id, "Arn"]})
                for number, worker in enumerate(workers(spec, self.config.dispatch_pollers)):
                    self.pollers.append(
                        SqsEventSource(
                            sqs,
                            stack.physical_ids[source.queue_logical_id],
                            queue_arn,
                            stack.region,
                            source,
                            worker.invoke,
                            name=f"{spec.logical_id}-poller-{number}",
                        )
                    )
            if spec.schedules:
                worker = workers(spec, 1)[0]
                for schedule in spec.schedules:
                    self.schedules.append(
                        ScheduleSource(
                            f"arn:aws:events:{stack.region}:123456789012:rule/{self.config.stack_name}-"
                            f"{spec.logical_id}{schedule.name}",
                            stack.region,
                            self.config.schedule_period_seconds or schedule.period_seconds,
                            worker.invoke,
                            name=f"{spec.logical_id}-{schedule.name}",
                        )
                    )
        for worker in starting:  # the instances start in parallel; wait for their cold starts here
            worker.wait_ready()
        self.gateway = LocalApiGateway(routes, self.config.host, self.config.port)
        self.gateway.start()
        for poller in self.pollers:
            poller.start()
        for scheduled in self.schedules:
            scheduled.start()

    def _log_line(self, function: str, stream: str, line: str) -> None:
        print(line, flush=True)
        if self.log_shipper is not None:
            self.log_shipper.add(function, stream, line)

    def instance(self, logical_id: str) -> HandlerInstance:
        """A handler instance in this process, with the function's environment (`notifyctl invoke`)."""
        if self.template is None or self.stack is None:
            raise RuntimeError("the local stack is not started")
        spec = self.template.function(logical_id)
        os.environ.update(
            function_environment(spec, EnvironmentResolver(self.stack, self.template), dict(os.environ))
        )
        return HandlerInstance(spec)

    @property
    def api_url(self) -> str:
        if self.gateway is None:
            raise RuntimeError("the local stack is not serving")
        host = "localhost" if self.config.host in {"127.0.0.1", "0.0.0.0"} else self.config.host
        return f"http://{host}:{self.gateway.port}"

    def stop(self) -> None:
        for poller in self.pollers:  # all at once, then wait: stopping takes one long poll, not one each
            poller.request_stop()
        for poller in self.pollers:
            poller.stop()
        self.pollers.clear()
        for scheduled in self.schedules:
            scheduled.request_stop()
        for scheduled in self.schedules:
            scheduled.stop()
        self.schedules.clear()
        if self.gateway is not None:
            self.gateway.stop()
            self.gateway = None
        for worker in self.workers:
            worker.request_stop()
        for worker in self.workers:
            worker.stop()
        self.workers.clear()
        if self.log_shipper is not None:  # the last lines, before the emulator goes
            self.log_shipper.stop()
            self.log_shipper = None
        if self.redis is not None:
            self.redis.stop()
            self.redis = None
        if self.emulator is not None:
            self.emulator.stop()
            self.emulator = None
        if self.sinks is not None:
            self.sinks.stop()
            self.sinks = None
        if self._saved_environment is not None:
            os.environ.clear()
            os.environ.update(self._saved_environment)
            self._saved_environment = None


def function_environment(
    spec: sam_template.FunctionSpec, resolver: EnvironmentResolver, environ: dict[str, str]
) -> dict[str, str]:
    """A function's variables resolved against the stack. Resource references (table, queue) always
    come from the stack; any other variable set in the environment or .env wins, like
    `sam local invoke --env-vars`."""
    resolved: dict[str, str] = dict(LOCAL_RUNTIME_ENV)
    for name, node in spec.environment.items():
        if not resolver.is_resource_reference(node) and name in environ:
            resolved[name] = environ[name]
        else:
            resolved[name] = resolver.resolve(node)
    return resolved
