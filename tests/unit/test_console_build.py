"""The console's committed third-party files (api/console/static/vendor/ and their licences) are the
build of console/'s pinned packages: the digests that `make console` records must match both, so
neither is edited without the other. The console's own modules are served as written."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from config.settings import PROJECT_ROOT

SOURCES = PROJECT_ROOT / "console"
BUILT = PROJECT_ROOT / "api" / "console" / "static"
MANIFEST = BUILT / "build-manifest.json"
INPUT_FILES = ("package.json", "package-lock.json", "build.mjs")
REBUILD = "run `make console` and commit api/console/static/"


def digests(root: Path, paths) -> dict[str, str]:
    return {path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(paths)}


def manifest() -> dict:
    return json.loads(MANIFEST.read_text())


def test_the_build_inputs_are_the_committed_sources():
    inputs = [SOURCES / name for name in INPUT_FILES]
    assert digests(SOURCES, inputs) == manifest()["inputs"], f"console/ changed since the build: {REBUILD}"


def test_the_built_files_are_unedited():
    outputs = [path for path in (BUILT / "vendor").rglob("*") if path.is_file()]
    outputs.append(BUILT / "THIRD_PARTY_LICENSES")
    assert digests(BUILT, outputs) == manifest()["outputs"], f"api/console/static/vendor/ was edited by hand: {REBUILD}"


def test_every_library_file_is_pinned_and_licensed():
    package = json.loads((SOURCES / "package.json").read_text())
    lock = json.loads((SOURCES / "package-lock.json").read_text())
    licences = (BUILT / "THIRD_PARTY_LICENSES").read_text()
    for name, version in package["dependencies"].items():
        assert version[0].isdigit(), f"{name} must be pinned exactly, not {version!r}"
        assert lock["packages"][f"node_modules/{name}"]["version"] == version
        assert f"{name} {version}" in licences
