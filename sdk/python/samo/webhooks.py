"""Verifying a delivery's Standard Webhooks signature, with the reference ``standardwebhooks`` package.

The API signs ``<webhook-id>.<webhook-timestamp>.<body>`` with HMAC-SHA256 under the endpoint's
(or the account's) ``whsec_`` secret; while a rotated-out secret is in its overlap window a
delivery carries a signature per secret, and either verifies.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from samo.errors import SamoError


class InvalidSignature(SamoError):
    """The delivery's signature does not match the secret, or its timestamp is too old or too new."""


def verify(body: bytes | str, headers: Mapping[str, str], secret: str) -> dict[str, Any]:
    """The delivery's JSON payload, once its signature and timestamp check out; else :class:`InvalidSignature`.

    ``body`` must be the raw request body, byte for byte as received (not re-serialised JSON).
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    try:
        payload = Webhook(secret).verify(body, lowered)
    except WebhookVerificationError as error:
        raise InvalidSignature(str(error)) from None
    return payload if isinstance(payload, dict) else json.loads(payload)
