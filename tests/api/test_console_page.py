"""`/console` is served by the app with its strict policy, and every file the page loads, module
imports included, is served from the app itself (no CDN; it works offline)."""
from __future__ import annotations

import re
from posixpath import dirname, join, normpath

from api.views.console import STATIC_DIR
from tests.api.test_docs_page import asset_urls
from tests.support.problems import assert_problem

IMPORT = re.compile(r"""(?:^|\n)\s*import\s+(?:[^"';]+?\s+from\s+)?["']([^"']+)["']""")
STORAGE_USE = re.compile(r"\b(?:localStorage|sessionStorage|indexedDB)\s*[.\[]|document\.cookie")
JAVASCRIPT = ("text/javascript", "application/javascript")


def test_the_page_carries_a_strict_content_security_policy(client):
    page = client.get("/console")
    assert page.status_code == 200 and page.mimetype == "text/html"
    policy = page.headers["Content-Security-Policy"]
    for directive in ("default-src 'self'", "script-src 'self'", "style-src 'self'", "connect-src 'self'",
                      "frame-ancestors 'none'", "object-src 'none'", "base-uri 'none'"):
        assert directive in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert client.get("/console/app.js").headers["Content-Security-Policy"] == policy


def module_imports(source: str, path: str) -> list[str]:
    return [normpath(join(dirname(path), target)) for target in IMPORT.findall(source)]


def test_every_file_the_page_loads_comes_from_the_app(client):
    page = client.get("/console").get_data(as_text=True)
    assert "<script>" not in page and "style=" not in page, "inline script or style breaks the policy"
    pending = [url for url in asset_urls(page) if url.startswith("/")]
    assert "/console/app.js" in pending
    seen = set()
    while pending:
        url = pending.pop()
        if url in seen:
            continue
        seen.add(url)
        asset = client.get(url)
        assert asset.status_code == 200, url
        if url.endswith(".js"):
            assert asset.mimetype in JAVASCRIPT, (url, asset.mimetype)
            source = asset.get_data(as_text=True)
            assert "eval(" not in source and "new Function" not in source, url
            pending.extend(module_imports(source, url))
        elif url.endswith(".css"):
            assert asset.mimetype == "text/css"
    assert {"/console/vendor/uPlot.esm.js", "/console/pages/subjects.js", "/console/api.js"} <= seen


def test_no_file_outside_the_build_is_served(client):
    for name in ("build-manifest.json", "../views/console.py", "..%2F..%2F__init__.py", "missing.js"):
        assert_problem(client.get(f"/console/{name}"), 404, "not-found")


def test_the_console_keeps_no_credential_in_browser_storage(client):
    """Tokens live in memory only; the browser tests check storage stays empty after a sign-in."""
    names = [path.relative_to(STATIC_DIR).as_posix() for path in STATIC_DIR.rglob("*.js")
             if "vendor" not in path.parts]
    assert "api.js" in names
    for name in names:
        source = client.get(f"/console/{name}").get_data(as_text=True)
        assert not STORAGE_USE.search(source), name
