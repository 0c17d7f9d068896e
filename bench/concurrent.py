"""``python bench/concurrent.py``: the concurrent-clients benchmark (bench/concurrent_clients.py).

A script run from this folder has the folder first on ``sys.path``, so this file's name would
shadow the standard library's ``concurrent`` package for every script here (asyncio, and so
SQLAlchemy, import ``concurrent.futures``). Imported under that name, the module therefore puts
the real package in its place; run as a script, it runs the benchmark.
"""
import os
import sys

if __name__ == "concurrent":
    import importlib.machinery
    import importlib.util

    _here = os.path.dirname(os.path.abspath(__file__))
    _spec = importlib.machinery.PathFinder.find_spec(
        "concurrent", [entry for entry in sys.path if os.path.abspath(entry or ".") != _here])
    _package = importlib.util.module_from_spec(_spec)
    sys.modules["concurrent"] = _package
    _spec.loader.exec_module(_package)
elif __name__ == "__main__":
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    from bench.concurrent_clients import main

    main()
