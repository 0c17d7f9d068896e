"""Standard Webhooks signatures: what a `webhooks` worker adds to each delivery.

Signing follows https://www.standardwebhooks.com: the signed content is
``<webhook-id>.<webhook-timestamp>.<body>``, the signature is ``v1,`` + base64 HMAC-SHA256 under
the secret's bytes, and a secret is written ``whsec_`` + base64. While a rotated-out secret is
still inside its overlap window, a message carries one signature per secret (space-separated),
so a receiver that still holds the old secret keeps verifying. Secrets are made and kept
encrypted at rest by ``db.secrets``.
"""
from __future__ import annotations

import base64
import hashlib
import hmac

from db.secrets import SECRET_PREFIX

SIGNATURE_VERSION = "v1"


def secret_bytes(secret: str) -> bytes:
    encoded = secret[len(SECRET_PREFIX):] if secret.startswith(SECRET_PREFIX) else secret
    return base64.b64decode(encoded + "=" * (-len(encoded) % 4))


def sign_webhook(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """One ``v1,<base64>`` signature of ``msg_id.timestamp.body``."""
    signed_content = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_bytes(secret), signed_content, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode('ascii')}"


def signature_header(signing_secrets: list[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value: one signature per valid secret, newest first."""
    return " ".join(sign_webhook(secret, msg_id, timestamp, body) for secret in signing_secrets)


def webhook_headers(signing_secrets: list[str], msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(signing_secrets, msg_id, timestamp, body),
    }
