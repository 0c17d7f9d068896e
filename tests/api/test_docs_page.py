"""`/docs` works with no network: every script and stylesheet it references is served by the app."""
from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import requests

from tests.support.problems import assert_problem

EXPECTED_TYPES = {".js": ("text/javascript", "application/javascript"), ".css": ("text/css",),
                  ".png": ("image/png",)}


class AssetLinks(HTMLParser):
    """The URLs a browser fetches to render the page: <script src> and <link href>."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "script" and attributes.get("src"):
            self.urls.append(attributes["src"])
        elif tag == "link" and attributes.get("href"):
            self.urls.append(attributes["href"])


def asset_urls(page: str) -> list[str]:
    parser = AssetLinks()
    parser.feed(page)
    return parser.urls


def test_every_asset_of_the_docs_page_comes_from_the_app(live_server):
    page = requests.get(live_server + "/docs", timeout=10)
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    urls = asset_urls(page.text)
    assert any(url.endswith(".js") for url in urls) and any(url.endswith(".css") for url in urls), urls
    for url in urls:
        absolute = urljoin(live_server + "/docs", url)
        assert urlsplit(absolute).netloc == urlsplit(live_server).netloc, f"{url} is not served by the app"
        asset = requests.get(absolute, timeout=10)
        assert asset.status_code == 200, url
        suffix = url[url.rindex("."):]
        assert asset.headers["Content-Type"].split(";")[0] in EXPECTED_TYPES[suffix], (url, asset.headers)
        assert len(asset.content) > 0


def test_the_bundle_is_a_swagger_ui_that_reads_openapi_3_1(client):
    """Swagger UI 4 shows a blank error for an `openapi: 3.1.0` document; 5 renders it."""
    bundle = client.get("/docs/assets/swagger-ui-bundle.js")
    assert bundle.status_code == 200
    assert b"SwaggerUIBundle" in bundle.data
    assert b"OpenAPI31" in bundle.data or b"openapi31" in bundle.data.lower()
    assert client.get("/openapi.json").get_json()["openapi"].startswith("3.1")


def test_only_the_page_assets_are_served(client):
    for name in ("index.html", "swagger-editor-bundle.js", "..%2F__init__.py", "LICENSE"):
        assert_problem(client.get(f"/docs/assets/{name}"), 404, "not-found")


def test_the_docs_page_links_to_the_console_and_the_sdk(client):
    page = client.get("/docs").get_data(as_text=True)
    assert 'href="/console"' in page and "sdk/python/README.md" in page
    description = client.get("/openapi.json").get_json()["info"]["description"]
    assert "(/console)" in description and "sdk/python/README.md" in description
