"""Webhook signing secrets: made here, and kept encrypted at rest.

Secrets must be recoverable to sign, so they cannot be hashed like API keys; they are stored
encrypted with Fernet (AES-128-CBC + HMAC-SHA256). The key comes from ``SAMO_SECRETS_KEY``
(comma-separated Fernet keys: the first encrypts, all decrypt, so the key itself can be
rotated). Without it, a key is derived from ``SAMO_JWT_SECRET`` by HKDF, so a dev stack works
with the one secret it already generates; production sets its own key. The API seals secrets,
``db.webhooks`` opens them, and webhook workers sign with them (``workers.webhook_signing``).
"""
from __future__ import annotations

import base64
import secrets

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from config.settings import Settings

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
_DERIVATION_INFO = b"samo-brain webhook signing secrets v1"


class SecretsKeyMissing(RuntimeError):
    pass


def generate_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def derived_fernet_key(jwt_secret: str) -> bytes:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_DERIVATION_INFO).derive(
        jwt_secret.encode("utf-8")
    )
    return base64.urlsafe_b64encode(key)


def secret_box(settings: Settings) -> MultiFernet:
    """The cipher for secrets at rest; raises when neither SAMO_SECRETS_KEY nor SAMO_JWT_SECRET is set."""
    configured = [key.strip() for key in settings.secrets_key.split(",") if key.strip()]
    if configured:
        return MultiFernet([Fernet(key.encode("ascii")) for key in configured])
    if settings.jwt_secret:
        return MultiFernet([Fernet(derived_fernet_key(settings.jwt_secret))])
    raise SecretsKeyMissing(
        "Webhook signing secrets need an encryption key: set SAMO_SECRETS_KEY "
        "(python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')."
    )


def seal_secret(box: MultiFernet, secret: str) -> str:
    return box.encrypt(secret.encode("utf-8")).decode("ascii")


def open_secret(box: MultiFernet, ciphertext: str) -> str:
    """Raises ``InvalidToken`` when the ciphertext was sealed under a key no longer configured."""
    return box.decrypt(ciphertext.encode("ascii")).decode("utf-8")


__all__ = ["InvalidToken", "SecretsKeyMissing", "generate_secret", "secret_box", "seal_secret", "open_secret"]
