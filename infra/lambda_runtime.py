"""Running a function's handler in this process, as Lambda would: its module loaded from the
function's code folder (one copy per handler instance), a LambdaContext with a deadline."""

from __future__ import annotations

import importlib.util
import itertools
import json
import os
import select
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from infra.sam_template import FunctionSpec

_instances = itertools.count(1)


@dataclass
class LocalLambdaContext:
    """The attributes and method of the Lambda context object that handlers and powertools read."""

    function_name: str
    memory_limit_in_mb: int
    timeout_seconds: int
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = ""
    _deadline: float = 0.0

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_seconds
        self.log_group_name = self.log_group_name or f"/aws/lambda/{self.function_name}"

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class HandlerInstance:
    """One warm "execution environment": a fresh copy of the handler module, reused across invocations."""

    def __init__(
        self, spec: FunctionSpec, function_name: str | None = None, log_stream_name: str | None = None
    ) -> None:
        self.spec = spec
        self.function_name = function_name or spec.logical_id
        self.number = next(_instances)
        self.log_stream_name = log_stream_name or new_log_stream_name()
        module_name, _, attribute = spec.handler.rpartition(".")
        self.module = _load_module(spec, module_name, self.number)
        self._handler: Callable[[dict[str, Any], Any], Any] = getattr(self.module, attribute)

    def invoke(self, event: dict[str, Any]) -> Any:
        context = LocalLambdaContext(
            function_name=self.function_name,
            memory_limit_in_mb=self.spec.memory_mb,
            timeout_seconds=self.spec.timeout_seconds,
            log_stream_name=self.log_stream_name,
        )
        return self._handler(event, context)


def new_log_stream_name() -> str:
    """Lambda's form: date, version, instance id."""
    return f"{time.strftime('%Y/%m/%d')}/[$LATEST]{uuid.uuid4().hex}"


class FunctionError(RuntimeError):
    """The function failed (unhandled exception, crash or timeout), as Lambda reports it."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(f"{error_type}: {message}")
        self.error_type = error_type


class WorkerProcess:
    """A handler instance in its own process (`infra.lambda_worker`): its own module state, its own
    environment (the function's, from template.yaml), one invocation at a time, restarted after a
    crash or a timeout. Its log lines go to `on_log_line`."""

    def __init__(
        self,
        spec: FunctionSpec,
        environment: dict[str, str],
        function_name: str,
        on_log_line: Callable[[str, str, str], None] | None = None,
    ) -> None:
        self.spec = spec
        self.function_name = function_name
        self._environment = environment
        self._on_log_line = on_log_line or (lambda _function, _stream, line: print(line, flush=True))
        self._lock = threading.Lock()
        self._process: subprocess.Popen[str] | None = None
        self.log_stream_name = ""

    def start(self) -> None:
        self.log_stream_name = new_log_stream_name()
        env = {
            **os.environ,
            **self._environment,
            "AWS_LAMBDA_FUNCTION_NAME": self.function_name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(self.spec.memory_mb),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{self.function_name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": self.log_stream_name,
            # As in Lambda: powertools then keeps one event loop across invocations, so async
            # provider clients (aiohttp, httpx) reuse their connections while the instance is warm.
            "LAMBDA_TASK_ROOT": str(self.spec.code_dir),
            "PYTHONUNBUFFERED": "1",
        }
        self._process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "infra.lambda_worker",
                "--logical-id",
                self.spec.logical_id,
                "--code-dir",
                str(self.spec.code_dir),
                "--handler",
                self.spec.handler,
                "--timeout",
                str(self.spec.timeout_seconds),
                "--memory",
                str(self.spec.memory_mb),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=str(self.spec.code_dir.parent.parent),
        )
        threading.Thread(
            target=self._pump_logs,
            args=(self._process, self.log_stream_name),
            name=f"{self.function_name}-logs",
            daemon=True,
        ).start()

    def wait_ready(self, timeout: float = 60) -> None:
        reply = self._read_reply(timeout)
        if not reply.get("ready", False):
            self.stop()
            raise FunctionError("InitError", f"{self.function_name} failed to start")

    def _pump_logs(self, process: subprocess.Popen[str], stream: str) -> None:
        assert process.stderr is not None
        for line in process.stderr:
            self._on_log_line(self.function_name, stream, line.rstrip("\n"))

    def invoke(self, event: dict[str, Any]) -> Any:
        with self._lock:
            if self._process is None or self._process.poll() is not None:
                self.start()
                self.wait_ready()
            assert self._process is not None and self._process.stdin is not None
            try:
                self._process.stdin.write(json.dumps(event) + "\n")
                self._process.stdin.flush()
                reply = self._read_reply(self.spec.timeout_seconds)
            except (BrokenPipeError, FunctionError) as exc:
                self.stop()  # crashed or timed out: the next invocation gets a fresh instance
                if isinstance(exc, FunctionError):
                    raise
                raise FunctionError("Runtime.ExitError", f"{self.function_name} exited") from None
        if "error" in reply:
            raise FunctionError(reply["error"]["errorType"], reply["error"]["errorMessage"])
        return reply["result"]

    def _read_reply(self, timeout: float) -> dict[str, Any]:
        assert self._process is not None and self._process.stdout is not None
        ready, _, _ = select.select([self._process.stdout], [], [], timeout)
        if not ready:
            raise FunctionError("Sandbox.Timedout", f"{self.function_name} timed out after {timeout:.0f} s")
        line = self._process.stdout.readline()
        if not line:
            raise FunctionError("Runtime.ExitError", f"{self.function_name} exited")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def request_stop(self) -> None:
        """Close the instance's input: it finishes its invocation, if any, and exits."""
        if self._process is not None and self._process.stdin is not None and not self._process.stdin.closed:
            self._process.stdin.close()

    def stop(self) -> None:
        self.request_stop()
        process, self._process = self._process, None
        if process is None:
            return
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _load_module(spec: FunctionSpec, module_name: str, number: int) -> ModuleType:
    path = spec.code_dir / (module_name.replace(".", "/") + ".py")
    unique = f"_lambda_{spec.logical_id}_{number}_{module_name.replace('.', '_')}"
    module_spec = importlib.util.spec_from_file_location(unique, path)
    if module_spec is None or module_spec.loader is None:
        raise ImportError(f"cannot load handler module {path}")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[unique] = module
    module_spec.loader.exec_module(module)
    return module
