"""Signatures verify with the reference `standardwebhooks` package; secrets round-trip encrypted."""
from __future__ import annotations

import dataclasses
import json
import time

import pytest
from cryptography.fernet import Fernet
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from config.settings import Settings
from db.secrets import SecretsKeyMissing, generate_secret, open_secret, seal_secret, secret_box
from workers.webhook_signing import sign_webhook, webhook_headers

BODY = json.dumps({"type": "job.succeeded", "data": {"id": "42", "text": "héllo ✨"}}).encode()


def test_a_signed_message_verifies_with_the_standardwebhooks_package():
    secret = generate_secret()
    headers = webhook_headers([secret], "msg_1", int(time.time()), BODY)
    assert Webhook(secret).verify(BODY, headers)["type"] == "job.succeeded"


def test_the_signature_matches_the_specification_example():
    # The example of the Standard Webhooks specification (spec/standard-webhooks.md).
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    assert sign_webhook(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body) == (
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    )


def test_tampering_with_body_id_or_timestamp_breaks_verification():
    secret = generate_secret()
    now = int(time.time())
    headers = webhook_headers([secret], "msg_1", now, BODY)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY + b" ", headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY, {**headers, "webhook-id": "msg_2"})
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY, {**headers, "webhook-timestamp": str(now - 1)})
    with pytest.raises(WebhookVerificationError):
        Webhook(generate_secret()).verify(BODY, headers)


def test_during_a_rotation_both_the_new_and_the_old_secret_verify():
    new, old = generate_secret(), generate_secret()
    headers = webhook_headers([new, old], "msg_1", int(time.time()), BODY)
    assert len(headers["webhook-signature"].split(" ")) == 2
    Webhook(new).verify(BODY, headers)
    Webhook(old).verify(BODY, headers)


def test_secrets_are_whsec_prefixed_random_and_long_enough():
    first, second = generate_secret(), generate_secret()
    assert first.startswith("whsec_") and first != second
    assert len(first) >= len("whsec_") + 40


def test_secrets_are_sealed_and_opened_with_the_configured_key():
    settings = dataclasses.replace(Settings(), secrets_key=Fernet.generate_key().decode())
    sealed = seal_secret(secret_box(settings), "whsec_abc")
    assert "whsec_abc" not in sealed
    assert open_secret(secret_box(settings), sealed) == "whsec_abc"


def test_a_second_key_still_opens_secrets_after_the_key_is_rotated():
    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    sealed = seal_secret(secret_box(dataclasses.replace(Settings(), secrets_key=old_key)), "whsec_abc")
    rotated = dataclasses.replace(Settings(), secrets_key=f"{new_key},{old_key}")
    assert open_secret(secret_box(rotated), sealed) == "whsec_abc"


def test_without_a_secrets_key_the_key_is_derived_from_the_jwt_secret():
    settings = dataclasses.replace(Settings(), secrets_key="", jwt_secret="dev-secret")
    sealed = seal_secret(secret_box(settings), "whsec_abc")
    assert open_secret(secret_box(dataclasses.replace(settings)), sealed) == "whsec_abc"
    with pytest.raises(SecretsKeyMissing):
        secret_box(dataclasses.replace(settings, jwt_secret=""))
