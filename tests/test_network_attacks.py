"""Issue 14, network input: each attack reproduced against real servers on 127.0.0.1, one test per item.

Every test here failed before its fix: the client decoded both gzip layers of a 3 KB body into
gigabytes, followed redirects to any host and port, dropped releases whose feed description was an
image, waited forever on dribbled headers, let redirect hops past the SEC limiter, cached an empty
ticker map, and rounded 2.5 requests/s down to 2.
"""

from __future__ import annotations

import gzip
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from monitor import store
from monitor.documents import strip_provenance
from monitor.errors import BodyTooLarge, SourceTimeout, UnsupportedEncoding
from monitor.pipeline import Runtime, build_client, job_feeds, job_refresh_tickers
from monitor.tickers import WatchedCompany, cached_tickers_path, watched_companies
from tests.conftest import SAMPLES, USER_AGENT, make_config
from tests.feeds_wrap import Item, wrap_in_rss
from tests.servers import FixtureServer, Reply
from tests.test_hostile_input import bounded

RELEASE = strip_provenance((SAMPLES / "wire" / "releases"
                            / "RIOT_2024-06-04_may-2024-production-post-halving-decline.txt").read_bytes())
RSS = {"Content-Type": "application/rss+xml"}


def feeds_runtime(tmp_path: Path, closing: Callable[[Any], Any], feeds: dict[str, str], **http: Any) -> Runtime:
    """A runtime watching one feed per ticker, with the test configuration's client."""
    config = make_config(tmp_path, None, http=http)
    companies = [WatchedCompany(ticker, 1000 + i, "", (url,)) for i, (ticker, url) in enumerate(feeds.items())]
    return closing(Runtime(config, config.path(config.monitor.db), companies, offline=False,
                           client=build_client(config, USER_AGENT)))


def stored(rt: Runtime, closing: Callable[[Any], Any]) -> dict[str, Any]:
    return store.status(closing(store.open_db(rt.db_path)))


# --- 1. decompression bomb --------------------------------------------------------------------------

BOMB = gzip.compress(b"\0" * 200_000_000, compresslevel=9)  # ~200 KB on the wire, 200 MB decoded


@pytest.mark.parametrize("encoding, body, error, cause", [
    ("gzip, gzip", gzip.compress(BOMB), UnsupportedEncoding, "stacked content encodings 'gzip, gzip'"),
    ("gzip", BOMB, BodyTooLarge, "exceeds the limit of 1000000 bytes (decoded)"),
    ("br", b"\x0b\x02\x80hello\x03", UnsupportedEncoding, "content encoding 'br' is not supported"),
], ids=["stacked gzip", "one gzip layer", "unknown coding"])
def test_a_compressed_body_is_capped_while_decoding_and_stacked_or_unknown_codings_are_refused(
        tmp_path: Path, wire_server: FixtureServer, encoding: str, body: bytes, error: type, cause: str) -> None:
    wire_server.route("/bomb", Reply(200, body, {"Content-Type": "text/html", "Content-Encoding": encoding}))
    url = f"{wire_server.url}/bomb"
    with build_client(make_config(tmp_path, None, http={"max_body_bytes": 1_000_000}), USER_AGENT) as client:
        refused = bounded(lambda: client.get(url), megabytes=24)

    assert isinstance(refused, error) and refused.url == url and cause in str(refused)
    assert len(wire_server.requests) == 1  # never retried: the same bytes would come again


# --- 2. SSRF through redirects, ports and private addresses -------------------------------------------

SSRF_CASES = {
    "redirect to localhost": ("/mara/release", "http://localhost:{internal}/latest/meta-data/", {},
                              "leaves the feed's site 127.0.0.1"),
    "same host, another port": ("http://127.0.0.1:{internal}/latest/meta-data/", "", {},
                                "not the feed's http port"),
    "loopback without the allowance": ("/mara/release", "", {"allow_private_addresses": []},
                                       "resolves to 127.0.0.1, which is not a public address"),
}


@pytest.mark.parametrize("case", SSRF_CASES, ids=list(SSRF_CASES))
def test_feed_links_and_their_redirects_never_reach_another_port_host_or_a_private_address(
        tmp_path: Path, closing: Callable[[Any], Any], wire_server: FixtureServer, case: str) -> None:
    link, redirect, http, cause = SSRF_CASES[case]
    with FixtureServer() as internal:
        internal.route("/latest/meta-data/", Reply(200, b"<p>iam/security-credentials/admin SECRETKEY</p>" * 50,
                                                   {"Content-Type": "text/html"}))
        port = internal.httpd.server_address[1]
        link = link.format(internal=port)
        link = wire_server.url + link if link.startswith("/") else link
        wire_server.route("/mara/release", Reply(302, headers={"Location": redirect.format(internal=port)})
                          if redirect else Reply(200, RELEASE, {"Content-Type": "text/plain"}))
        wire_server.route("/mara/feed.rss", Reply(200, wrap_in_rss([Item("MARA release", link, guid="m1")]), RSS))
        rt = feeds_runtime(tmp_path, closing, {"MARA": f"{wire_server.url}/mara/feed.rss"}, **http)
        job_feeds(rt)
        status = stored(rt, closing)

        assert internal.requests == []
    [error] = status["recent_errors"]
    assert error["error"] == "RefusedURL" and error["url"] == link and cause in error["cause"]
    assert status["documents"] == 0
    if case == "loopback without the allowance":
        assert wire_server.paths() == ["/mara/feed.rss"]  # the configured feed is read; its link is not


def test_a_configured_url_redirected_to_the_metadata_address_is_refused_before_connecting(
        tmp_path: Path, closing: Callable[[Any], Any], wire_server: FixtureServer) -> None:
    """The address check, where the socket would be opened: 169.254.169.254 is never connected to."""
    metadata = "http://169.254.169.254/latest/meta-data/"
    wire_server.route("/mara/feed.rss", Reply(302, headers={"Location": metadata}))
    url = f"{wire_server.url}/mara/feed.rss"
    with build_client(make_config(tmp_path, None, http={"connect_timeout": 30.0}), USER_AGENT) as client:
        started = time.monotonic()
        refused = bounded(lambda: client.get(url))
    assert refused.url == url and "169.254.169.254 resolves to 169.254.169.254" in refused.cause
    assert time.monotonic() - started < 2.0  # refused, not a connect attempt that times out


# --- 3. releases whose description is only markup ----------------------------------------------------

@pytest.mark.parametrize("description", ['<![CDATA[<img src="https://cdn.example.com/logo.png">]]>', "&amp;#160;", "…",
                                         "&lt;p&gt;&lt;/p&gt;"],
                         ids=["image", "nbsp", "ellipsis", "empty paragraph"])
def test_an_item_whose_description_has_no_text_is_a_teaser_and_its_page_is_stored(
        tmp_path: Path, closing: Callable[[Any], Any], wire_server: FixtureServer, description: str) -> None:
    wire_server.route("/riot/release", Reply(200, RELEASE, {"Content-Type": "text/plain; charset=utf-8"}))
    rss = wrap_in_rss([Item("Riot May 2024", f"{wire_server.url}/riot/release", guid="r1")])
    rss = rss.replace(b"<description></description>", f"<description>{description}</description>".encode())
    wire_server.route("/riot/feed.rss", Reply(200, rss, RSS))
    rt = feeds_runtime(tmp_path, closing, {"RIOT": f"{wire_server.url}/riot/feed.rss"})

    [result] = job_feeds(rt)
    [again] = job_feeds(rt)

    assert result.errors == [] and result.documents_added == 1 and again.errors == []
    [doc] = store.list_documents(closing(store.open_db(rt.db_path)), "RIOT", with_text=True)
    assert "Riot Platforms" in doc["text"] and doc["url"] == f"{wire_server.url}/riot/release"


# --- 4. slow headers ---------------------------------------------------------------------------------

def test_dribbled_headers_time_out_by_the_total_deadline_without_holding_up_the_other_feeds(
        tmp_path: Path, closing: Callable[[Any], Any], wire_server: FixtureServer) -> None:
    """A header line every 0.2 s keeps every read under read_timeout; only a deadline on the exchange ends it."""
    dribble = {f"X-Pad-{i}": "x" for i in range(50)}  # 10 s of headers
    wire_server.route("/slow/feed.rss", Reply(200, b"<rss/>", {**dribble, **RSS}, drip=0.2))
    wire_server.route("/riot/release", Reply(200, RELEASE, {"Content-Type": "text/plain; charset=utf-8"}))
    wire_server.route("/riot/feed.rss", Reply(200, wrap_in_rss([Item("Riot", f"{wire_server.url}/riot/release",
                                                                     guid="r1")]), RSS))
    feeds = {"SLOW": f"{wire_server.url}/slow/feed.rss", "RIOT": f"{wire_server.url}/riot/feed.rss"}
    rt = feeds_runtime(tmp_path, closing, feeds, read_timeout=0.5, total_timeout=1.5, max_retries=0)

    started = time.monotonic()
    slow, riot = job_feeds(rt)
    took = time.monotonic() - started

    assert took < 3.0, f"the feeds job took {took:.1f}s"
    assert "no complete answer (connect, headers and body) within 1.5s" in slow.errors[0]
    assert riot.errors == [] and riot.documents_added == 1
    first = {seen.path: seen.time - started for seen in reversed(wire_server.requests)}
    assert first["/riot/feed.rss"] < 0.5  # polled beside the slow feed, not after it


def test_a_slow_release_page_is_cut_by_the_deadline_too(tmp_path: Path, wire_server: FixtureServer) -> None:
    wire_server.route("/slow", Reply(200, RELEASE, {"Content-Type": "text/plain"}, drip=0.2))  # 3.2 s of body
    with build_client(make_config(tmp_path, None, http={"total_timeout": 1.0, "max_retries": 0}), USER_AGENT) as c:
        started = time.monotonic()
        with pytest.raises(SourceTimeout, match="within 1.0s"):
            c.get(f"{wire_server.url}/slow")
    assert time.monotonic() - started < 1.5


# --- 5. redirects and the SEC limiter ----------------------------------------------------------------

def test_every_redirect_hop_takes_a_token_of_the_sec_limiter(tmp_path: Path, sec_server: FixtureServer) -> None:
    sec_server.route("/a", Reply(301, headers={"Location": "/b"}))
    sec_server.route("/b", Reply(301, headers={"Location": f"{sec_server.url}/c"}))
    sec_server.route("/c", Reply(200, b"ok", {"Content-Type": "text/plain"}))
    with build_client(make_config(tmp_path, sec_server), USER_AGENT) as client:
        answers = [client.get(f"{sec_server.url}/a") for _ in range(12)]
        sent = client.requests_sent

    assert {a.url for a in answers} == {f"{sec_server.url}/c"} and sent == 36
    times = sorted(seen.time for seen in sec_server.requests)
    busiest = max(sum(1 for t in times[i:] if t < start + 1.0) for i, start in enumerate(times))
    assert len(times) == 36 and busiest <= 10


# --- 6. a bad ticker-map refresh ---------------------------------------------------------------------

@pytest.mark.parametrize("body, cause", [
    (b"{}", "company_tickers.json is empty"),
    (b'{"0":{"cik_str":320193,"ticker":"AAPL","title":"Apple Inc."}}', "company_tickers.json lacks watched tickers MARA"),
], ids=["empty map", "watched ticker missing"])
def test_a_ticker_map_refresh_that_is_empty_or_lacks_a_watched_ticker_keeps_the_last_good_map(
        tmp_path: Path, closing: Callable[[Any], Any], sec_server: FixtureServer, body: bytes, cause: str) -> None:
    sec_server.route("/files/company_tickers.json", Reply(200, body, {"Content-Type": "application/json"}))
    config = make_config(tmp_path, sec_server, companies=[{"ticker": "MARA"}])
    rt = closing(Runtime(config, config.path(config.monitor.db), watched_companies(config), offline=False,
                         client=build_client(config, USER_AGENT)))

    [result] = job_refresh_tickers(rt)

    url = f"{sec_server.url}/files/company_tickers.json"
    assert result.errors == [f"{url}: {cause}; the last good ticker map is kept"]
    assert not cached_tickers_path(config).exists()
    assert [c.cik for c in watched_companies(config)] == [1507605]  # the next start still works


# --- 16. fractional rates ----------------------------------------------------------------------------

@pytest.mark.parametrize("rate, count", [(2.5, 5), (1.9, 4)])
def test_a_fractional_host_rate_is_kept_exactly_not_rounded_down(
        tmp_path: Path, wire_server: FixtureServer, rate: float, count: int) -> None:
    """2.5/s is 5 per 2 s (3 at most in one second); rounded down to 2/s the 5th request waited 2.2 s."""
    wire_server.route("/doc", Reply(200, b"ok", {"Content-Type": "text/plain"}))
    with build_client(make_config(tmp_path, None, http={"other_hosts_per_second": rate}), USER_AGENT) as client:
        for _ in range(count):
            client.get(f"{wire_server.url}/doc")

    times = [seen.time for seen in wire_server.requests]
    assert times[-1] - times[0] < 1.5
    assert max(sum(1 for t in times if start <= t < start + 1.0) for start in times) <= -(-rate // 1)
