"""A stack shared by the batching and bulk tests: model workers load once for both modules."""
from __future__ import annotations

import pytest

from tests.support.stack import isolated_stack


@pytest.fixture(scope="session")
def batching_stack(settings):
    """API, a batching `cpu` worker and a `bulk` worker on their own Redis database; chunks of 20 items."""
    with isolated_stack(settings, {"cpu": ("cpu",), "bulk": ("bulk",)}, bulk_chunk_size=20) as stack:
        yield stack
