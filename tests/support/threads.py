"""Running one function on several threads at once, for races a test provokes on purpose."""
from __future__ import annotations

import threading


def run_on_threads(target, count: int) -> None:
    """Start ``count`` threads running ``target`` and wait for all of them (a barrier in ``target`` lines them up)."""
    threads = [threading.Thread(target=target) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
