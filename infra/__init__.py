"""The local serverless stack: emulator, provisioning from template.yaml, API Gateway and SQS event
sources in-process, and the `notifyctl` command."""
