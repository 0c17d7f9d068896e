"""Request and response models: the same pydantic models validate requests and describe them in /openapi.json."""
