"""The local OTLP receiver (tests/support/otlp.py) in a process of its own, so the CPU it spends
decoding spans is counted apart from the API's: ``python bench/otlp_receiver.py`` prints its
endpoint, then, for each line read on stdin, the number of spans received so far.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.otlp import otlp_receiver  # noqa: E402


def main() -> None:
    with otlp_receiver() as (endpoint, spans):
        print(endpoint, flush=True)
        for _ in sys.stdin:
            print(len(spans.snapshot()), flush=True)


if __name__ == "__main__":
    main()
