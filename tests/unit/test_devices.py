import os

from workers.devices import cpu_threads_per_process


def test_an_explicit_thread_count_wins():
    assert cpu_threads_per_process(3, 8) == 3


def test_cores_are_shared_among_pool_processes_with_at_least_one_each():
    cores = os.cpu_count() or 1
    assert cpu_threads_per_process(0, 1) == cores
    assert cpu_threads_per_process(0, cores * 4) == 1
