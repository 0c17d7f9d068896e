"""Result-cache keys: an HMAC under the server's secret of tenant, model and text, never a bare digest."""
from __future__ import annotations

import dataclasses
import hashlib
import uuid

from config.settings import Settings
from db.result_cache_keys import cache_secret, result_key, tenant_prefix

TEXT = "I finally told my sister how I feel."
MODEL = "minilm-goemotions\x00abcd-int8\x00256"


def test_a_key_is_an_hmac_that_a_guessed_sentence_cannot_be_tested_against():
    tenant = uuid.uuid4()
    key = result_key(b"server-secret", tenant, MODEL, TEXT)
    assert key.startswith(tenant_prefix(tenant))
    digest = key.removeprefix(tenant_prefix(tenant))
    assert len(digest) == 64 and TEXT not in key
    for guess in (TEXT, f"{MODEL}\x00{TEXT}", f"{tenant}\x00{MODEL}\x00{TEXT}"):
        assert digest != hashlib.sha256(guess.encode()).hexdigest()


def test_keys_differ_by_secret_tenant_model_and_text():
    tenant = uuid.uuid4()
    key = result_key(b"server-secret", tenant, MODEL, TEXT)
    assert key == result_key(b"server-secret", tenant, MODEL, TEXT)
    assert len({key, result_key(b"other-secret", tenant, MODEL, TEXT),
                result_key(b"server-secret", uuid.uuid4(), MODEL, TEXT),
                result_key(b"server-secret", tenant, MODEL.replace("256", "128"), TEXT),
                result_key(b"server-secret", tenant, MODEL, TEXT + " ")}) == 5


def test_the_secret_is_the_setting_else_derived_from_the_jwt_secret_else_none():
    assert cache_secret(dataclasses.replace(Settings(), result_cache_secret="s3cret", jwt_secret="jwt")) == b"s3cret"
    derived = cache_secret(dataclasses.replace(Settings(), jwt_secret="jwt"))
    assert derived and derived != b"jwt"
    assert derived == cache_secret(dataclasses.replace(Settings(), jwt_secret="jwt"))
    assert cache_secret(dataclasses.replace(Settings(), jwt_secret="")) is None
