"""The webhook SSRF guard: which URLs are refused, and how the request itself is bounded."""
from __future__ import annotations

import datetime
import http.server
import ipaddress
import socket
import ssl
import threading
import time
from contextlib import contextmanager

import pytest

from config.webhook_destinations import (
    AllowList,
    DestinationRefused,
    ResolutionFailed,
    check_destination,
    parse_webhook_url,
)
from workers.webhook_http import post

NOTHING_ALLOWED = AllowList.parse([])
LOCAL_ALLOWED = AllowList.parse(["127.0.0.1"])
POST_LIMITS = {"connect_timeout_s": 2, "total_timeout_s": 3, "max_response_bytes": 64}


def resolver_answering(*addresses):
    def resolve(host, port):
        return list(addresses)
    return resolve


@pytest.mark.parametrize("url", [
    "http://127.0.0.1/hook",
    "http://127.1.2.3:8080/hook",
    "http://10.0.0.1/hook",
    "http://172.16.5.4/",
    "http://192.168.1.1/",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::1]/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://[::ffff:a9fe:a9fe]/",
    "http://[fe80::1]/",
    "http://[fc00::1]/",
    "http://[64:ff9b::7f00:1]/",
    "http://0.0.0.0/",
    "http://[::]/",
    "http://224.0.0.1/",
    "http://100.64.0.1/",
    "http://localhost/hook",
    "http://LOCALHOST.:8080/hook",
    "http://api.localhost/hook",
    "ftp://example.com/hook",
    "file:///etc/passwd",
    "gopher://example.com/",
    "javascript:alert(1)",
    "http://user:pass@example.com/",
    "http:///nohost",
])
def test_dangerous_urls_are_refused_before_any_lookup(url):
    with pytest.raises(DestinationRefused):
        check_destination(url, NOTHING_ALLOWED, resolver=resolver_answering("93.184.216.34"))


@pytest.mark.parametrize("internal", ["127.0.0.1", "10.0.0.1", "169.254.169.254", "::1", "::ffff:127.0.0.1",
                                      "192.168.0.10", "fd00::5"])
def test_a_public_name_resolving_to_an_internal_address_is_refused(internal):
    with pytest.raises(DestinationRefused, match="address"):
        check_destination("https://hooks.example.com/in", NOTHING_ALLOWED, resolver=resolver_answering(internal))


def test_one_internal_answer_among_public_ones_is_enough_to_refuse():
    resolve = resolver_answering("93.184.216.34", "10.1.2.3")
    with pytest.raises(DestinationRefused, match="10.1.2.3"):
        check_destination("https://hooks.example.com/in", NOTHING_ALLOWED, resolver=resolve)


def test_localhost_resolved_by_the_system_is_refused():
    with pytest.raises(DestinationRefused):
        check_destination("http://localhost:9/", NOTHING_ALLOWED)


def test_a_name_the_system_resolves_to_loopback_is_refused():
    # Numeric forms that getaddrinfo turns into 127.0.0.1 without any DNS server.
    for url in ("http://2130706433/", "http://0x7f.1/", "http://127.1/"):
        with pytest.raises(DestinationRefused, match="loopback"):
            check_destination(url, NOTHING_ALLOWED)


def test_a_public_address_is_accepted_and_pinned():
    target = check_destination("https://hooks.example.com:8443/in?x=1", NOTHING_ALLOWED,
                               resolver=resolver_answering("93.184.216.34"))
    assert (target.scheme, target.host, target.port) == ("https", "hooks.example.com", 8443)
    assert target.request_target == "/in?x=1"
    assert target.addresses == ("93.184.216.34",)


def test_names_that_do_not_resolve_fail_to_resolve_rather_than_being_refused():
    with pytest.raises(ResolutionFailed):
        check_destination("http://no-such-host.invalid/", NOTHING_ALLOWED)


def test_the_allow_list_admits_listed_addresses_networks_and_names_only():
    allow = AllowList.parse(["127.0.0.1", "10.8.0.0/16", "receiver.internal"])
    check_destination("http://127.0.0.1:8080/", allow)
    check_destination("http://10.8.3.4/", allow)
    check_destination("http://receiver.internal/", allow, resolver=resolver_answering("192.168.7.7"))
    for url in ("http://10.9.0.1/", "http://[::1]/", "http://[::ffff:127.0.0.1]/", "http://169.254.169.254/"):
        with pytest.raises(DestinationRefused):
            check_destination(url, allow)


def test_static_checks_at_registration_do_not_resolve_names():
    assert parse_webhook_url("https://hooks.example.com/x", NOTHING_ALLOWED)[1] == "hooks.example.com"
    assert parse_webhook_url("http://some-name-that-does-not-exist.invalid/", NOTHING_ALLOWED)


class ScriptedHandler(http.server.BaseHTTPRequestHandler):
    script: dict = {}

    def do_POST(self):  # noqa: N802 - http.server's naming
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        type(self).script.setdefault("seen", []).append({"path": self.path, "host": self.headers["Host"]})
        behaviour = type(self).script.get("behaviour", "ok")
        if behaviour == "redirect":
            self.send_response(302)
            self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif behaviour == "big":
            self.send_response(200)
            self.send_header("Content-Length", str(10_000_000))
            self.end_headers()
            self.wfile.write(b"x" * 10_000_000)
        elif behaviour in ("trickle-status", "trickle-body"):
            if behaviour == "trickle-body":
                self.send_response(200)
                self.send_header("Content-Length", "1000")
                self.end_headers()
            for byte in (b"HTTP/1.0 200 OK\r\n" if behaviour == "trickle-status" else b"x" * 1000):
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(0.3)
        else:
            self.send_response(204)
            self.end_headers()

    def log_message(self, *args):
        pass


@contextmanager
def receiver(behaviour="ok", tls_context=None):
    handler = type("Handler", (ScriptedHandler,), {"script": {"behaviour": behaviour}})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    server.handle_error = lambda *_args: None
    if tls_context is not None:
        server.socket = tls_context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_port, handler.script
    finally:
        server.shutdown()
        server.server_close()


def test_redirects_are_not_followed():
    with receiver("redirect") as (port, script):
        target = check_destination(f"http://127.0.0.1:{port}/hook", LOCAL_ALLOWED)
        outcome = post(target, b"{}", {}, **POST_LIMITS)
    assert outcome.status_code == 302
    assert outcome.location.startswith("http://169.254.169.254")
    assert len(script["seen"]) == 1


def test_only_the_first_bytes_of_a_large_answer_are_read():
    with receiver("big") as (port, _):
        outcome = post(check_destination(f"http://127.0.0.1:{port}/", LOCAL_ALLOWED), b"{}", {}, **POST_LIMITS)
    assert outcome.status_code == 200
    assert len(outcome.body_excerpt) == POST_LIMITS["max_response_bytes"]


def post_with_deadline(port, total_timeout_s=1.5):
    started = time.monotonic()
    outcome = post(check_destination(f"http://127.0.0.1:{port}/", LOCAL_ALLOWED), b"{}", {},
                   connect_timeout_s=1, total_timeout_s=total_timeout_s, max_response_bytes=100_000)
    return outcome, time.monotonic() - started


def test_a_receiver_trickling_its_status_line_times_out_at_the_total_timeout():
    with receiver("trickle-status") as (port, _):
        outcome, elapsed = post_with_deadline(port)
    assert outcome.status_code is None and "timed out" in outcome.error
    assert 1.4 < elapsed < 2.5


def test_a_receiver_trickling_its_body_keeps_its_status_but_is_cut_off_at_the_deadline():
    with receiver("trickle-body") as (port, _):
        outcome, elapsed = post_with_deadline(port)
    assert outcome.status_code == 200
    assert 0 < len(outcome.body_excerpt) < 1000
    assert 1.4 < elapsed < 2.5


def test_a_closed_port_is_a_connection_error():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    outcome = post(check_destination(f"http://127.0.0.1:{port}/", LOCAL_ALLOWED), b"{}", {}, **POST_LIMITS)
    assert outcome.status_code is None and outcome.error.startswith("connection error")


def self_signed_certificate(tmp_path, host_name):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host_name)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host_name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


def test_https_connects_to_the_checked_address_with_the_url_name_for_sni_and_certificate(tmp_path):
    cert, key = self_signed_certificate(tmp_path, "hooks.test")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    allow = AllowList.parse(["127.0.0.1"])
    with receiver("ok", tls_context=context) as (port, script):
        good = check_destination(f"https://hooks.test:{port}/in", allow, resolver=resolver_answering("127.0.0.1"))
        assert post(good, b"{}", {}, ca_certs=cert, **POST_LIMITS).status_code == 204
        assert script["seen"][0]["host"] == f"hooks.test:{port}"

        wrong = check_destination(f"https://other.test:{port}/in", allow, resolver=resolver_answering("127.0.0.1"))
        outcome = post(wrong, b"{}", {}, ca_certs=cert, **POST_LIMITS)
    assert outcome.status_code is None and "TLS" in outcome.error


def test_refusal_reasons_cover_the_python_311_gaps_for_mapped_addresses():
    from config.webhook_destinations import refusal_reason

    assert refusal_reason(ipaddress.ip_address("::ffff:127.0.0.1")) == "an IPv4-mapped IPv6 address"
    assert refusal_reason(ipaddress.ip_address("93.184.216.34")) is None
    assert refusal_reason(ipaddress.ip_address("2606:2800:220:1::1")) is None


@pytest.mark.parametrize("url", ["http://2130706433/", "http://127.1/", "http://0x7f.1/", "http://017700000001/",
                                 "http://0x7f000001:8080/x", "http://10.1/", "http://0/", "http://169.254.43518/"])
def test_numeric_spellings_of_internal_addresses_are_refused_at_registration(url):
    with pytest.raises(DestinationRefused, match="SAMO_WEBHOOK_ALLOWED_DESTINATIONS"):
        parse_webhook_url(url, NOTHING_ALLOWED)


def test_a_numeric_spelling_admitted_by_the_allow_list_connects_to_the_address_it_spells():
    target = check_destination("http://127.1:8080/in", LOCAL_ALLOWED, resolver=resolver_answering("10.0.0.1"))
    assert target.addresses == ("127.0.0.1",)
    assert parse_webhook_url("http://1249767650/", NOTHING_ALLOWED)[1] == "1249767650"


def test_a_loopback_refusal_names_the_setting_that_allows_it():
    for url in ("http://127.0.0.1/", "http://localhost/"):
        with pytest.raises(DestinationRefused, match="allow it with SAMO_WEBHOOK_ALLOWED_DESTINATIONS"):
            parse_webhook_url(url, NOTHING_ALLOWED)
