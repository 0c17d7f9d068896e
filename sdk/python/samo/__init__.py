"""SAMO Brain's Python client: ``samo.Client`` (or ``samo.AsyncClient``) and its typed results."""
from samo import webhooks
from samo._client import AsyncClient, Client
from samo._version import __version__
from samo.errors import (
    APIConnectionError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    ProblemError,
    RateLimitError,
    SamoError,
    ServiceUnavailableError,
    UnprocessableError,
    WaitTimeout,
)
from samo.models import (
    Batch,
    Correlations,
    Delivery,
    EmotionResult,
    Endpoint,
    Erasure,
    Event,
    Insights,
    Job,
    Problem,
    ResultLine,
    SigningSecret,
    Timeline,
)
from samo.webhooks import InvalidSignature

__all__ = [
    "APIConnectionError", "AsyncClient", "AuthenticationError", "BadRequestError", "Batch", "Client",
    "ConflictError", "Correlations", "Delivery", "EmotionResult", "Endpoint", "Erasure", "Event", "Insights",
    "InvalidSignature", "Job", "NotFoundError", "PermissionDeniedError", "Problem", "ProblemError",
    "RateLimitError", "ResultLine", "SamoError", "ServiceUnavailableError", "SigningSecret", "Timeline",
    "UnprocessableError", "WaitTimeout", "__version__", "webhooks",
]
