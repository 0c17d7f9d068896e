"""``pip install ./sdk/python`` in a fresh virtualenv gives an importable ``samo`` with its declared dependencies.

The dependencies themselves come from this environment's site-packages (a ``.pth`` line), so
the test needs no package index; the SDK's wheel is built (with this environment's setuptools) from a copy
of its directory and installed with the fresh venv's own pip.
"""
from __future__ import annotations

import json
import shutil
import site
import subprocess
import sys

from tests.support.processes import REPO_ROOT

CHECK = """
import importlib.metadata as metadata, json, samo
print(json.dumps({"file": samo.__file__, "version": metadata.version("samo-brain"),
                  "requires": metadata.requires("samo-brain"), "client": samo.Client.__name__}))
"""


def test_pip_install_of_the_sdk_in_a_fresh_venv(tmp_path):
    source = shutil.copytree(REPO_ROOT / "sdk" / "python", tmp_path / "sdk")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    own_site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                              check=True, capture_output=True, text=True).stdout.strip()
    (tmp_path / "venv-deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    shutil.copy(tmp_path / "venv-deps.pth", own_site)
    wheels = tmp_path / "wheels"
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                            "--disable-pip-version-check", "-w", str(wheels), str(source)],
                           capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stdout + built.stderr
    installed = subprocess.run([str(python), "-m", "pip", "install", "--no-deps", "--no-index", "--ignore-installed",
                                "--disable-pip-version-check", *map(str, wheels.glob("samo_brain-*.whl"))],
                               capture_output=True, text=True, timeout=300)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    checked = subprocess.run([str(python), "-c", CHECK], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stderr
    found = json.loads(checked.stdout)
    assert found["file"].startswith(own_site) and found["version"] == "0.1.0" and found["client"] == "Client"
    requires = " ".join(found["requires"])
    assert "httpx" in requires and "standardwebhooks" in requires and 'extra == "progress"' in requires
