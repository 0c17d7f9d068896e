"""An API over real HTTP with real workers for the SDK's tests: emotion (`cpu`), batches (`bulk`),
webhook deliveries to a local receiver (`webhooks`) and erasures (`maintenance`); and one without
workers, where what is submitted stays queued."""
from __future__ import annotations

import pytest

from config.settings import parse_tiers
from tests.support.stack import isolated_stack
from tests.support.webhook_receiver import WORKER_ENV, running_receiver

#: The session's tiers, and `burst`: one request per two seconds, so a second call is refused (429).
TIERS = "free=1000/60/1000,tiny=3/60/1000,oneflight=1000/60/1,burst=1/2/1000"


@pytest.fixture(scope="session")
def sdk_stack(settings):
    workers = {"cpu": ("cpu",), "bulk": ("bulk",), "webhooks": ("webhooks", "maintenance")}
    with isolated_stack(settings, workers, extra_env=WORKER_ENV, bulk_chunk_size=20,
                        rate_limit_tiers=parse_tiers(TIERS), webhook_allowed_destinations=("127.0.0.1",)) as stack:
        yield stack


@pytest.fixture(scope="session")
def idle_api(settings):
    """The API with no worker behind it: what is submitted stays queued until canceled."""
    with isolated_stack(settings, {}, start_workers=False) as stack:
        yield stack.base_url


@pytest.fixture(scope="module")
def receiver():
    with running_receiver() as receiver:
        yield receiver


@pytest.fixture
def sdk_tenant(sdk_stack, make_tenant):
    return make_tenant()


@pytest.fixture
def sdk(sdk_stack, sdk_tenant):
    import samo

    with samo.Client(sdk_stack.base_url, sdk_tenant.api_key) as client:
        yield client
