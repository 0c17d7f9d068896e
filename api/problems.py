"""RFC 9457 problem details: the one shape every 4xx and 5xx answer takes."""
from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, current_app, json, request
from werkzeug.exceptions import HTTPException

from api.outages import describe, unavailable_dependency

PROBLEM_CONTENT_TYPE = "application/problem+json"

log = logging.getLogger(__name__)

#: Seconds a client is asked to wait when a dependency is down (``/readyz`` asks the same).
OUTAGE_RETRY_AFTER_S = 5

HTTP_SLUGS = {
    400: "bad-request",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    406: "not-acceptable",
    409: "conflict",
    413: "payload-too-large",
    414: "uri-too-long",
    415: "unsupported-media-type",
    417: "expectation-failed",
    429: "too-many-requests",
    431: "request-header-fields-too-large",
    500: "internal-error",
    501: "not-implemented",
    503: "service-unavailable",
}


class Problem(Exception):
    """Raise anywhere in a request to answer with a problem document.

    ``slug`` names the problem type; it is stable, documented and what clients branch on.
    """

    def __init__(
        self,
        status: int,
        slug: str,
        title: str,
        detail: str | None = None,
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.slug = slug
        self.title = title
        self.detail = detail
        self.headers = headers or {}
        self.extensions = extensions


def problem_type_uri(slug: str) -> str:
    return current_app.config["SAMO_SETTINGS"].problem_base_uri + slug


def problem_response(problem: Problem) -> Response:
    body: dict[str, Any] = {
        "type": problem_type_uri(problem.slug),
        "title": problem.title,
        "status": problem.status,
    }
    if problem.detail:
        body["detail"] = problem.detail
    body["instance"] = request.path
    body.update(problem.extensions)
    response = current_app.response_class(
        json.dumps(body), status=problem.status, mimetype=PROBLEM_CONTENT_TYPE
    )
    response.headers.update(problem.headers)
    return response


def _from_http_exception(error: HTTPException) -> Response:
    status = error.code or 500
    problem = Problem(status, HTTP_SLUGS.get(status, "http-error"), error.name, error.description)
    response = problem_response(problem)
    if status == 405 and error.get_response().headers.get("Allow"):
        response.headers["Allow"] = error.get_response().headers["Allow"]
    return response


def outage_problem(dependency: str) -> Problem:
    return Problem(503, "service-unavailable", "Service unavailable",
                   f"The service cannot reach its {dependency} at the moment; try again shortly.",
                   headers={"Retry-After": str(OUTAGE_RETRY_AFTER_S)}, dependency=dependency)


def _from_unexpected(error: Exception) -> Response:
    """Every error no view turned into a problem: 503 when a dependency is down, else 500."""
    outage = unavailable_dependency(error)
    if outage is not None:
        dependency, cause = outage
        log.warning("%s unavailable during %s %s: %s", dependency, request.method, request.path, describe(cause))
        return problem_response(outage_problem(dependency))
    log.exception("unhandled error", exc_info=error)
    return problem_response(
        Problem(500, "internal-error", "Internal Server Error", "The server failed to handle this request.")
    )


def init_app(app: Flask) -> None:
    app.register_error_handler(Problem, problem_response)
    app.register_error_handler(HTTPException, _from_http_exception)
    app.register_error_handler(Exception, _from_unexpected)
