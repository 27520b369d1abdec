"""The HTTP API's schemas and error bodies (pydantic models shared by the API function and the docs)."""
