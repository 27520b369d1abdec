"""Notification delivery service: the shared package every Lambda function imports (the layer)."""
