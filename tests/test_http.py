"""The HTTP client against a real local server: conditional GET, retries, limits, timeouts."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from monitor.errors import BodyTooLarge, FetchError, NotFound, RateLimited, RefusedURL, SourceTimeout
from monitor.pipeline import build_client
from tests.conftest import FIXTURES, USER_AGENT, make_config
from tests.servers import FixtureServer, Reply

ATOM = FIXTURES / "edgar" / "getcurrent_count100_start3500_2025-12-12.atom.xml"


def client_for(tmp_path: Path, sec: FixtureServer, **http: object):
    return build_client(make_config(tmp_path, sec, http=http), USER_AGENT)


def test_sends_the_declared_user_agent_and_accepts_gzip(tmp_path, sec_server):
    sec_server.route("/feed", Reply.file(ATOM, "application/atom+xml"))
    with client_for(tmp_path, sec_server) as client:
        client.get(f"{sec_server.url}/feed")
    headers = sec_server.requests[0].headers
    assert headers["User-Agent"] == USER_AGENT
    assert "gzip" in headers["Accept-Encoding"]


def test_second_request_with_etag_gets_304(tmp_path, sec_server):
    sec_server.route("/feed", Reply.file(ATOM, "application/atom+xml", etag='"v1"'))
    with client_for(tmp_path, sec_server) as client:
        first = client.get(f"{sec_server.url}/feed")
        second = client.get(f"{sec_server.url}/feed", etag=first.etag)
    assert first.status == 200 and first.etag == '"v1"' and len(first.content) == ATOM.stat().st_size
    assert second.not_modified and second.content == b""
    assert sec_server.requests[1].headers["If-None-Match"] == '"v1"'


def test_429_is_retried_after_the_retry_after_delay(tmp_path, sec_server):
    sec_server.route("/feed", Reply(429, b"slow down", {"Retry-After": "1"}), Reply.file(ATOM, "text/xml"))
    with client_for(tmp_path, sec_server) as client:
        response = client.get(f"{sec_server.url}/feed")
    assert response.status == 200
    first, second = sec_server.requests
    assert second.time - first.time >= 0.95


def test_500_then_success_is_retried_with_backoff(tmp_path, sec_server):
    sec_server.route("/feed", Reply(500, b"oops"), Reply(503, b"busy"), Reply.file(ATOM, "text/xml"))
    with client_for(tmp_path, sec_server) as client:
        assert client.get(f"{sec_server.url}/feed").status == 200
    assert len(sec_server.requests) == 3


def test_persistent_500_gives_up_after_the_configured_retries(tmp_path, sec_server):
    sec_server.route("/feed", Reply(500, b"oops"))
    with client_for(tmp_path, sec_server, max_retries=2) as client, pytest.raises(FetchError, match="HTTP 500"):
        client.get(f"{sec_server.url}/feed")
    assert len(sec_server.requests) == 3


def test_404_is_not_retried(tmp_path, sec_server):
    body = (FIXTURES / "edgar" / "CIK-000000001.json.404.xml").read_bytes()
    sec_server.route("/submissions/CIK-000000001.json", Reply(404, body, {"Content-Type": "application/xml"}))
    with client_for(tmp_path, sec_server) as client, pytest.raises(NotFound):
        client.get(f"{sec_server.url}/submissions/CIK-000000001.json")
    assert len(sec_server.requests) == 1


def test_body_over_the_limit_is_refused(tmp_path, sec_server):
    sec_server.route("/big", Reply(200, b"x" * 5000, {"Content-Type": "text/html"}))
    with client_for(tmp_path, sec_server, max_body_bytes=1000) as client, pytest.raises(BodyTooLarge, match="1000"):
        client.get(f"{sec_server.url}/big")
    assert len(sec_server.requests) == 1


def test_server_stalling_past_the_read_timeout_is_a_timeout(tmp_path, sec_server):
    sec_server.route("/stall", Reply(200, b"late", delay=2.0))
    with client_for(tmp_path, sec_server, read_timeout=0.3, max_retries=0) as client:
        with pytest.raises(SourceTimeout, match="timed out"):
            client.get(f"{sec_server.url}/stall")


def test_file_urls_are_refused_without_a_request(tmp_path, sec_server):
    with client_for(tmp_path, sec_server) as client, pytest.raises(RefusedURL):
        client.get("file:///etc/passwd")
    assert sec_server.requests == []


def test_sec_threshold_answer_pauses_every_sec_request(tmp_path, sec_server):
    page = b"<html><body><h1>Your Request Originates from an Undeclared Automated Tool</h1>" \
           b"Request Rate Threshold Exceeded</body></html>"
    sec_server.route("/blocked", Reply(403, page, {"Content-Type": "text/html"}))
    sec_server.route("/feed", Reply.file(ATOM, "text/xml"))
    config = make_config(tmp_path, sec_server, sec={"rate_limit_pause_seconds": 1.0})
    with build_client(config, USER_AGENT) as client:
        with pytest.raises(RateLimited, match="threshold"):
            client.get(f"{sec_server.url}/blocked")
        assert client.sec_limiter.paused_for() > 0.5
        started = time.monotonic()
        client.get(f"{sec_server.url}/feed")
        waited = time.monotonic() - started
    assert len([p for p in sec_server.paths() if p == "/blocked"]) == 1  # not retried: retrying renews the block
    assert waited >= 0.5


def test_a_burst_of_200_fetches_never_exceeds_the_configured_rate_at_the_server(tmp_path, sec_server):
    """The shipped rate is 8 requests/s, under SEC's ceiling of 10."""
    sec_server.route("/doc", Reply(200, b"ok", {"Content-Type": "text/plain"}))
    with client_for(tmp_path, sec_server) as client:
        threads = [
            threading.Thread(target=lambda: [client.get(f"{sec_server.url}/doc") for _ in range(25)])
            for _ in range(8)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    times = sorted(seen.time for seen in sec_server.requests)
    assert len(times) == 200
    busiest = max(sum(1 for t in times[i:] if t < start + 1.0) for i, start in enumerate(times))
    assert busiest <= 8
    assert times[-1] - times[0] >= 23.0  # and the limiter does not starve: ~8/s
