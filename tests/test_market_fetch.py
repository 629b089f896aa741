"""The market job end to end against a local server serving the real bundled files, its settings,
its place in the schedule, and ``monitor market-data`` over the offline replay."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from monitor import store
from monitor.cli import app
from monitor.config import MarketSettings, load_config
from monitor.errors import ConfigError, StoreError
from monitor.market.fetch import download_series, market_sources, save_downloads
from monitor.market.result import MarketPoll
from monitor.market.series import Observation, parse
from monitor.pipeline import Runtime, build_client, fetch_jobs, job_market
from monitor.tickers import WatchedCompany, watched_companies
from tests.conftest import ROOT, SAMPLES, USER_AGENT, make_config
from tests.market_json import coingecko_json
from tests.servers import FixtureServer, Reply

MARKET = SAMPLES / "market"
COINGECKO_PATH = "/api/v3/coins/bitcoin/market_chart?vs_currency=usd&days=365&interval=daily"
HY_PATH = "/graph/fredgraph.csv?id=BAMLH0A0HYM2"
DGS10_PATH = "/graph/fredgraph.csv?id=DGS10"
CSV = {"Content-Type": "text/csv"}


def price_path(symbol: str) -> str:
    return f"/q/d/l/?s={symbol}.us&i=d"


def closes(ticker: str) -> bytes:
    [path] = MARKET.glob(f"{ticker}_daily_close_*.csv")
    return path.read_bytes()


def serve_market(server: FixtureServer, **overrides: Reply) -> None:
    """Real files under the paths of the real sources; ``overrides`` replace the replies of a series'
    route, keyed by series name with ":" as "_" (``px_MARA=Reply(...)``; a tuple is served in turn)."""
    routes = {
        "btc_usd": (COINGECKO_PATH, Reply(200, coingecko_json(620, live_price=114000.0),
                                          {"Content-Type": "application/json"})),
        "hy_oas": (HY_PATH, Reply.file(MARKET / "FRED_BAMLH0A0HYM2_2012-07_2017-07.csv", "text/csv")),
        "ust_10y": (DGS10_PATH, Reply.file(MARKET / "FRED_DGS10_2012-07_2017-07.csv", "text/csv")),
        "px:MARA": (price_path("mara"), Reply(200, closes("MARA"), CSV)),
        "px:RIOT": (price_path("riot"), Reply(200, closes("RIOT"), CSV)),
        "px:IBIT": (price_path("ibit"), Reply(200, closes("IBIT"), CSV)),
    }
    for series, (path, reply) in routes.items():
        replies = overrides.get(series.replace(":", "_"), reply)
        server.route(path, *(replies if isinstance(replies, tuple) else (replies,)))


def market_settings(server: FixtureServer) -> dict[str, Any]:
    # The real files are Yahoo downloads, so the price sources are read as yahoo_csv here.
    return {
        "sources": [
            {"series": "btc_usd", "url": server.url + COINGECKO_PATH, "format": "coingecko_json"},
            {"series": "hy_oas", "url": server.url + HY_PATH, "format": "fred_csv"},
            {"series": "ust_10y", "url": server.url + DGS10_PATH, "format": "fred_csv"},
        ],
        "price_url_template": server.url + "/q/d/l/?s={symbol}.us&i=d",
        "price_format": "yahoo_csv",
        "price_symbols": ["IBIT"],
    }


@pytest.fixture
def market_server() -> Iterator[FixtureServer]:
    with FixtureServer() as server:
        yield server


def market_runtime(tmp_path: Path, closing: Any, server: FixtureServer) -> Runtime:
    config = make_config(tmp_path, None, market=market_settings(server))
    companies = [WatchedCompany("MARA", 1507605, "", ()), WatchedCompany("RIOT", 1167419, "", ())]
    return closing(Runtime(config, config.path(config.monitor.db), companies, offline=False,
                           client=build_client(config, USER_AGENT)))


def stored(rt: Runtime, closing: Any) -> dict[str, int]:
    db = closing(store.open_db(rt.db_path))
    return {row["series"]: row["count"] for row in store.list_market_series(db)}


def source_row(rt: Runtime, closing: Any, name: str) -> dict[str, Any]:
    db = closing(store.open_db(rt.db_path))
    return next(s for s in store.status(db)["sources"] if s["name"] == name)


ALL_STORED = {"btc_usd": 620, "hy_oas": 1302, "ust_10y": 1249, "px:MARA": 502, "px:RIOT": 502, "px:IBIT": 495}


# --- the job against a local server ---------------------------------------------------------------


def test_market_job_stores_every_source_once_each(tmp_path, closing, market_server) -> None:
    serve_market(market_server)
    rt = market_runtime(tmp_path, closing, market_server)

    results = job_market(rt)

    assert [(r.source, r.errors) for r in results] == [(f"market:{s}", []) for s in ALL_STORED]
    assert all(isinstance(r, MarketPoll) and r.requests == 1 for r in results)
    assert stored(rt, closing) == ALL_STORED


def test_an_update_is_stored_whole_or_not_at_all(tmp_path, closing, market_server) -> None:
    """The score stage must never see one source of an update without the others."""
    serve_market(market_server)
    rt = market_runtime(tmp_path, closing, market_server)
    db = closing(store.open_db(rt.db_path))
    btc, hy = (download_series(rt.client, db, source) for source in rt.config.market.sources[:2])
    broken = replace(hy, observations=[*hy.observations, Observation(date(2099, 1, 1), float("nan"))])

    with pytest.raises(StoreError):
        save_downloads(db, [btc, broken])  # the NaN breaks NOT NULL after btc_usd was written

    assert stored(rt, closing) == {}
    assert [r.changed for r in save_downloads(db, [btc, hy])] == [620, 1302]


def test_fetched_btc_days_are_the_previous_days_close_and_the_live_point_is_dropped(
        tmp_path, closing, market_server) -> None:
    serve_market(market_server)
    rt = market_runtime(tmp_path, closing, market_server)
    job_market(rt)

    db = closing(store.open_db(rt.db_path))
    btc = store.market_series(db, "btc_usd")

    assert btc[0] == ("2023-12-31", 42208.202176186474) and btc[-1] == ("2025-09-10", 113975.32489468766)
    assert 114000.0 not in [value for _, value in btc]


def test_stored_observations_keep_their_source_url(tmp_path, closing, market_server) -> None:
    serve_market(market_server)
    rt = market_runtime(tmp_path, closing, market_server)
    job_market(rt)

    db = closing(store.open_db(rt.db_path))
    sources = {row[0] for row in db.execute("select source from market_observations where series = 'px:MARA'")}

    assert sources == {market_server.url + price_path("mara")}


def test_a_500_from_one_source_is_logged_and_the_others_are_still_stored(tmp_path, closing, market_server) -> None:
    serve_market(market_server, hy_oas=Reply(500, b"<html>Internal Server Error</html>"))
    rt = market_runtime(tmp_path, closing, market_server)

    results = job_market(rt)

    db = closing(store.open_db(rt.db_path))
    [error] = store.status(db)["recent_errors"]
    assert [r.source for r in results if r.errors] == ["market:hy_oas"]
    assert (error["source"], error["error"], error["url"]) == ("market:hy_oas", "FetchError",
                                                               market_server.url + HY_PATH)
    assert "HTTP 500" in error["cause"]
    assert stored(rt, closing) == {k: v for k, v in ALL_STORED.items() if k != "hy_oas"}
    assert source_row(rt, closing, "market:hy_oas")["consecutive_failures"] == 1


def test_a_payload_that_does_not_parse_is_logged_as_a_parse_error_naming_the_url(
        tmp_path, closing, market_server) -> None:
    serve_market(market_server, px_RIOT=Reply(200, b"No data", CSV))
    rt = market_runtime(tmp_path, closing, market_server)

    job_market(rt)

    db = closing(store.open_db(rt.db_path))
    [error] = store.status(db)["recent_errors"]
    assert (error["source"], error["error"]) == ("market:px:RIOT", "ParseError")
    assert error["url"] == market_server.url + price_path("riot")
    assert "line 1: not a Yahoo Finance CSV" in error["cause"]
    assert "px:RIOT" not in stored(rt, closing) and "px:MARA" in stored(rt, closing)


def test_an_unchanged_source_answers_304_to_the_second_poll_and_nothing_changes(
        tmp_path, closing, market_server) -> None:
    body = (MARKET / "FRED_DGS10_2012-07_2017-07.csv").read_bytes()
    serve_market(market_server, ust_10y=Reply(200, body, CSV, etag='"dgs10-v1"'))
    rt = market_runtime(tmp_path, closing, market_server)
    job_market(rt)
    before = len(market_server.requests)

    again = {r.source: r for r in job_market(rt)}

    [seen] = [s for s in market_server.requests[before:] if s.path == DGS10_PATH]
    assert seen.headers.get("If-None-Match") == '"dgs10-v1"'
    dgs10 = again["market:ust_10y"]
    assert (dgs10.errors, dgs10.requests, dgs10.observations, dgs10.changed) == ([], 1, 0, 0)
    assert source_row(rt, closing, "market:ust_10y")["consecutive_failures"] == 0
    assert stored(rt, closing)["ust_10y"] == 1249


def test_sources_without_validators_are_read_again_and_change_nothing(tmp_path, closing, market_server) -> None:
    serve_market(market_server)
    rt = market_runtime(tmp_path, closing, market_server)
    job_market(rt)

    again = job_market(rt)

    assert [r.changed for r in again] == [0] * len(ALL_STORED)
    assert [r.observations for r in again] == list(ALL_STORED.values())


def test_validators_are_kept_only_once_the_observations_are_stored(tmp_path, closing, market_server) -> None:
    body = (MARKET / "FRED_DGS10_2012-07_2017-07.csv").read_bytes()
    serve_market(market_server, ust_10y=(Reply(200, b"<html>maintenance</html>", CSV, etag='"v1"'),
                                         Reply(200, body, CSV, etag='"v1"')))
    rt = market_runtime(tmp_path, closing, market_server)
    job_market(rt)
    before = len(market_server.requests)

    job_market(rt)

    [seen] = [s for s in market_server.requests[before:] if s.path == DGS10_PATH]
    assert "If-None-Match" not in seen.headers
    assert stored(rt, closing)["ust_10y"] == 1249


def test_a_revised_value_on_a_later_poll_replaces_the_stored_one(tmp_path, closing, market_server) -> None:
    # Stooq's row for today is the running price until the close; the next poll brings the close.
    first = closes("MARA")
    revised = first.rsplit(b"\n", 1)[0] + b"\n2025-12-31,9.05"
    serve_market(market_server, px_MARA=(Reply(200, first, CSV), Reply(200, revised, CSV)))
    rt = market_runtime(tmp_path, closing, market_server)
    job_market(rt)

    mara = next(r for r in job_market(rt) if r.source == "market:px:MARA")

    db = closing(store.open_db(rt.db_path))
    assert mara.changed == 1 and store.market_series(db, "px:MARA", start="2025-12-31") == [("2025-12-31", 9.05)]


def test_market_job_does_nothing_offline(tmp_path, closing) -> None:
    config = make_config(tmp_path, None)
    rt = closing(Runtime(config, config.path(config.monitor.db), [], offline=True))

    assert job_market(rt) == []


# --- sources from the settings ------------------------------------------------------------------


def test_default_sources_are_coingecko_fred_and_stooq_per_watched_ticker_and_ibit() -> None:
    sources = market_sources(MarketSettings(), ["MARA", "CORZ"])

    assert [(s.series, s.format, s.url) for s in sources] == [
        ("btc_usd", "coingecko_json",
         "https://api.coingecko.com/api/v3/coins/bitcoin/market_chart?vs_currency=usd&days=365&interval=daily"),
        ("hy_oas", "fred_csv", "https://fred.stlouisfed.org/graph/fredgraph.csv?id=BAMLH0A0HYM2"),
        ("ust_10y", "fred_csv", "https://fred.stlouisfed.org/graph/fredgraph.csv?id=DGS10"),
        ("px:MARA", "stooq_csv", "https://stooq.com/q/d/l/?s=mara.us&i=d"),
        ("px:CORZ", "stooq_csv", "https://stooq.com/q/d/l/?s=corz.us&i=d"),
        ("px:IBIT", "stooq_csv", "https://stooq.com/q/d/l/?s=ibit.us&i=d"),
    ]


def test_a_listed_price_source_replaces_the_derived_one() -> None:
    settings = MarketSettings.model_validate({"sources": [
        {"series": "px:MARA", "url": "https://example.com/mara.csv", "format": "yahoo_csv"}]})

    sources = market_sources(settings, ["MARA", "RIOT"])

    assert [(s.series, s.url) for s in sources] == [
        ("px:MARA", "https://example.com/mara.csv"), ("px:RIOT", "https://stooq.com/q/d/l/?s=riot.us&i=d"),
        ("px:IBIT", "https://stooq.com/q/d/l/?s=ibit.us&i=d")]


def test_an_empty_price_template_derives_no_price_sources() -> None:
    sources = market_sources(MarketSettings(price_url_template=""), ["MARA"])

    assert [s.series for s in sources] == ["btc_usd", "hy_oas", "ust_10y"]


def test_the_repository_config_holds_the_default_market_settings() -> None:
    config = load_config(ROOT / "config.toml")

    assert config.market == MarketSettings() and config.schedule.market_hours == 6


BAD_MARKET = {
    "unknown format": ('[[market.sources]]\nseries = "btc_usd"\nurl = "https://x.example/b"\nformat = "xlsx"\n',
                       "market.sources.0.format"),
    "bad series name": ('[[market.sources]]\nseries = "BTC"\nurl = "https://x.example/b"\nformat = "fred_csv"\n',
                        "market.sources.0.series: 'BTC' is not a series name"),
    "series twice": ('[[market.sources]]\nseries = "hy_oas"\nurl = "https://x.example/a"\nformat = "fred_csv"\n'
                     '[[market.sources]]\nseries = "hy_oas"\nurl = "https://x.example/b"\nformat = "fred_csv"\n',
                     "series hy_oas is listed twice"),
    "not http": ('[[market.sources]]\nseries = "hy_oas"\nurl = "file:///etc/passwd"\nformat = "fred_csv"\n',
                 "market.sources.0.url"),
    "template without symbol": ('[market]\nprice_url_template = "https://stooq.com/q/d/l/?s=mara.us"\n',
                                "has no {symbol} placeholder"),
    "template with other braces": ('[market]\nprice_url_template = "https://x.example/{symbol}/{day}"\n',
                                   "only {symbol} may be in braces"),
    "unknown key": ('[market]\nprice_url = "https://x.example/{symbol}"\n', "market.price_url"),
    "zero interval": ('[schedule]\nmarket_hours = 0\n', "schedule.market_hours"),
}


@pytest.mark.parametrize("case", BAD_MARKET, ids=list(BAD_MARKET))
def test_bad_market_settings_are_a_config_error_naming_the_key(tmp_path, case) -> None:
    body, expected = BAD_MARKET[case]
    path = tmp_path / "config.toml"
    path.write_text(body, encoding="utf-8")

    with pytest.raises(ConfigError) as excinfo:
        load_config(path)

    assert expected in str(excinfo.value)


# --- schedule -------------------------------------------------------------------------------------


@pytest.mark.parametrize("offline, name", [(False, "market"), (True, "market-replay")], ids=["online", "offline"])
def test_the_market_job_runs_every_market_hours(tmp_path, offline, name) -> None:
    config = make_config(tmp_path, None, schedule={"market_hours": 4})
    rt = Runtime(config, config.path(config.monitor.db), [], offline=offline)

    [job] = [job for job in fetch_jobs(rt) if job.name.startswith("market")]

    assert (job.name, job.every_seconds) == (name, 4 * 3600)


def test_offline_market_replay_job_reads_the_samples_market_folder(tmp_path, closing) -> None:
    config = make_config(tmp_path, None)
    rt = Runtime(config, config.path(config.monitor.db), [], offline=True)
    [job] = [job for job in fetch_jobs(rt) if job.name == "market-replay"]

    [result] = job.run(rt)

    assert result.errors == [] and result.filings_seen == 15
    assert stored(rt, closing)["px:IBIT"] == 495


# --- monitor market-data --------------------------------------------------------------------------



def monitor(db_path: Path, *args: str) -> Any:
    return CliRunner().invoke(app, ["--config", str(ROOT / "config.toml"), "--db", str(db_path), *args])


def test_market_data_json_on_an_empty_store_is_an_object_with_no_series(db_path) -> None:
    result = monitor(db_path, "market-data", "--json")

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"series": []}


def test_offline_run_then_market_data_lists_every_series(replayed_db) -> None:
    result = monitor(replayed_db, "market-data", "--json")

    rows = {row["series"]: row for row in json.loads(result.stdout)["series"]}
    assert result.exit_code == 0, result.output
    assert rows["btc_usd"] == {"series": "btc_usd", "first": "2014-09-17", "last": "2025-09-10", "count": 4012}
    assert set(rows) == {"btc_usd", "hy_oas", "ust_10y", "px:IBIT", "px:MARA", "px:CORZ", "px:IREN", "px:WULF",
                         "px:CIFR", "px:HUT", "px:RIOT", "px:CLSK", "px:APLD"}


def test_second_offline_run_adds_no_observations(tmp_path, restore_logging) -> None:
    db_path = tmp_path / "m.db"
    first = monitor(db_path, "run", "--once", "--offline")

    again = monitor(db_path, "run", "--once", "--offline")

    assert "market: 11650 observations added or revised" in first.stdout
    assert "market: 0 observations added or revised" in again.stdout


def test_market_data_table_names_each_series(tmp_path, closing) -> None:
    db = closing(store.open_db(tmp_path / "m.db"))
    store.save_observations(db, "px:MARA", parse("yahoo_csv", closes("MARA"), "MARA"), "test")

    result = monitor(tmp_path / "m.db", "market-data")

    assert result.exit_code == 0, result.output
    assert "px:MARA" in result.stdout and "2024-01-02" in result.stdout and "502" in result.stdout


# --- market writes beside the other jobs' writes ---------------------------------------------------


def test_a_market_write_waits_for_a_transaction_that_read_first_instead_of_failing_it(tmp_path, closing) -> None:
    """Jobs write from parallel threads: a transaction that reads, then writes (save_documents does)
    must not fail because a market write committed in between (WAL's "database is locked")."""
    path = tmp_path / "m.db"
    writer = closing(store.open_db(path))
    observations = parse("yahoo_csv", closes("MARA"), "MARA")
    has_read = threading.Event()
    outcome: dict[str, Any] = {}

    def read_then_write() -> None:
        reader = store.open_db(path)  # a connection per thread, as the jobs have
        try:
            with store.transaction(reader, "documents"):
                reader.execute("select count(*) from market_observations").fetchone()
                has_read.set()
                time.sleep(0.3)  # the market write is attempted meanwhile
                reader.execute("insert into companies (ticker, name) values ('MARA', 'MARA Holdings')")
            outcome["reader"] = "ok"
        except Exception as exc:  # reported through the assertion below
            outcome["reader"] = repr(exc)
        finally:
            has_read.set()
            reader.close()

    thread = threading.Thread(target=read_then_write)
    thread.start()
    has_read.wait(5)
    saved = store.save_observations(writer, "px:MARA", observations, "test")
    thread.join(10)

    assert outcome == {"reader": "ok"} and saved == 502


def test_offline_replay_and_market_replay_run_side_by_side(tmp_path, closing) -> None:
    config = make_config(tmp_path, None)
    rt = Runtime(config, config.path(config.monitor.db), watched_companies(load_config(ROOT / "config.toml")), offline=True)
    jobs = [job for job in fetch_jobs(rt) if job.name in ("replay", "market-replay")]
    results: dict[str, Any] = {}
    threads = [threading.Thread(target=lambda j=job: results.update({j.name: j.run(rt)})) for job in jobs]

    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert [r.errors for r in results["replay"]] == [[]] and [r.errors for r in results["market-replay"]] == [[]]
    assert store.status(closing(store.open_db(rt.db_path)))["documents"] >= 30
