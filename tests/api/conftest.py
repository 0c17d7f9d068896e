"""Fixtures of the API tests: an app with the fast submission path switched off, and the path to test on."""
from __future__ import annotations

import dataclasses

import pytest

#: ``Settings.group_commit`` of each submission path (``api.fastpath``).
SUBMIT_PATHS = {"group-commit": True, "plain": False}


@pytest.fixture(scope="session")
def plain_app(settings):
    """The API with ``SAMO_GROUP_COMMIT=false``: each request stores, publishes and rate-limits on its own."""
    from api import create_app

    return create_app(dataclasses.replace(settings, group_commit=False), {"TESTING": True})


@pytest.fixture(params=list(SUBMIT_PATHS))
def submit_path(request) -> str:
    """A module runs on both paths by overriding ``app`` with
    ``app if submit_path == "group-commit" else plain_app``."""
    return request.param
