"""Adapters: every AWS, Redis and network call of the service lives below this package."""
