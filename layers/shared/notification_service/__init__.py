"""Notification delivery service: the shared package every Lambda function imports (the layer)."""

__version__ = "0.1.0"  # as pyproject.toml's (a test holds them equal): no importlib.metadata at cold start
