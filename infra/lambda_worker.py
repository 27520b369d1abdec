"""One Lambda execution environment: a process that loads a handler once and runs it on events
read from stdin, one JSON line in, one JSON line out (on the original stdout; everything the handler
prints, its log lines included, goes to stderr, where the parent collects it).

Started by `infra.lambda_runtime.WorkerProcess`; not meant to be run by hand.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import traceback
from pathlib import Path
from typing import Any


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--logical-id", required=True)
    parser.add_argument("--code-dir", required=True)
    parser.add_argument("--handler", required=True)
    parser.add_argument("--timeout", type=int, required=True)
    parser.add_argument("--memory", type=int, required=True)
    args = parser.parse_args()

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the parent stops us
    protocol = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # the handler's stdout (powertools' JSON logs) now goes to stderr
    sys.stdout = sys.stderr

    from infra.lambda_runtime import HandlerInstance
    from infra.sam_template import FunctionSpec

    spec = FunctionSpec(
        logical_id=args.logical_id,
        code_dir=Path(args.code_dir),
        handler=args.handler,
        runtime="",
        timeout_seconds=args.timeout,
        memory_mb=args.memory,
        environment={},
    )
    try:
        instance = HandlerInstance(
            spec,
            function_name=os.environ.get("AWS_LAMBDA_FUNCTION_NAME"),
            log_stream_name=os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME"),
        )
    except Exception as exc:  # an import-time failure: report it on every invocation, like Lambda
        init_error: dict[str, Any] | None = _error(exc)
    else:
        init_error = None
        from infra.faults import install_from_environment

        install_from_environment(args.logical_id)  # the chaos test's fault plan, when one is set
    protocol.write(json.dumps({"ready": init_error is None}) + "\n")
    protocol.flush()

    for line in sys.stdin:
        if not line.strip():
            continue
        if init_error is not None:
            reply: dict[str, Any] = {"error": init_error}
        else:
            try:
                reply = {"result": instance.invoke(json.loads(line))}
            except Exception as exc:
                traceback.print_exc()
                reply = {"error": _error(exc)}
        sys.stderr.flush()
        protocol.write(json.dumps(reply, default=str) + "\n")
        protocol.flush()
    return 0


def _error(exc: BaseException) -> dict[str, Any]:
    return {
        "errorType": type(exc).__name__,
        "errorMessage": str(exc),
        "stackTrace": traceback.format_exception(exc)[-5:],
    }


if __name__ == "__main__":
    sys.exit(main())
