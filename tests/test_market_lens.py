"""The market lens on the real bundled series: beta, calendars, hedge, event study, peers, CLI.

The independent checks read the CSV files of data/samples/market/ with plain pandas and numpy
(never through the store or ``lens.aligned_returns``) and fit with ``numpy.polyfit``.
"""

from __future__ import annotations

import csv
import json
import math
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from monitor import store
from monitor.cli import app
from monitor.config import MarketLensSettings, load_config
from monitor.errors import ConfigError, NoData
from monitor.extract.extractor import Extractor
from monitor.extract.stage import extract_pending
from monitor.fetch.replay import ReplayPlan, replay_samples
from monitor.market.lens import (
    aligned_returns,
    beta_stats,
    bucket_table,
    event_study,
    hedge_ratio,
    rolling_beta,
)
from monitor.market.replay import replay_market
from monitor.market.view import company_events, company_returns, market_view, peers_table
from monitor.score.thesis import load_theses
from tests.conftest import MODEL, ROOT, RULES, SAMPLES

MARKET = SAMPLES / "market"
COINGECKO = MARKET / "BTC-USD_coingecko_daily_2024-01-01_2025-09-11.csv"
YAHOO_BTC = MARKET / "BTC-USD_daily_2014-09-17_2024-03-31.csv"
MARA_CSV = MARKET / "MARA_daily_close_2024-01-02_2025-12-31.csv"
IBIT_CSV = MARKET / "IBIT_daily_close_2024-01-11_2025-12-31.csv"
TICKERS = ["MARA", "CORZ", "IREN", "WULF", "CIFR", "HUT", "RIOT", "CLSK", "APLD"]
SETTINGS = MarketLensSettings()


@pytest.fixture(scope="module")
def market_db(tmp_path_factory):
    """A store holding only the bundled market series."""
    db = store.open_db(tmp_path_factory.mktemp("lens-market") / "monitor.db")
    replay_market(db, MARKET)
    yield db
    db.close()


@pytest.fixture(scope="module")
def bundled_path(tmp_path_factory) -> Path:
    """A store built offline: every bundled document, extracted, and the market series (closed after)."""
    path = tmp_path_factory.mktemp("lens-bundled") / "monitor.db"
    db = store.open_db(path)
    try:
        replay_samples(db, ReplayPlan(SAMPLES, set(TICKERS)))
        extract_pending(db, Extractor.from_paths(RULES, MODEL))
        replay_market(db, MARKET)
    finally:
        db.close()
    return path


@pytest.fixture(scope="module")
def bundled(bundled_path):
    db = store.open_db(bundled_path)
    yield db
    db.close()


@pytest.fixture(scope="module")
def theses():
    return load_theses(ROOT / "rules" / "theses")


# --- independent readers of the raw files -------------------------------------------------------------


def yahoo_closes(path: Path) -> pd.Series:
    frame = pd.read_csv(path)
    return pd.Series(frame["Close"].to_numpy(dtype=float), index=pd.to_datetime(frame["Date"]))


def coingecko_closes() -> pd.Series:
    """CoinGecko's "D 00:00 UTC" price as the close of day D-1."""
    frame = pd.read_csv(COINGECKO)
    days = pd.to_datetime(frame["snapped_at"].str[:10]) - pd.Timedelta(days=1)
    return pd.Series(frame["price"].to_numpy(dtype=float), index=days)


def raw_value(path: Path, key: str, column: str) -> float:
    """One cell of a raw CSV file: the row whose first field starts with ``key``."""
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            if next(iter(row.values())).startswith(key):
                return float(row[column])
    raise AssertionError(f"{path.name}: no row {key}")


def independent_returns(stock: pd.Series, factor: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Both closes on the stock's days where the factor has one, then close-to-close returns (numpy)."""
    both = pd.DataFrame({"stock": stock, "factor": factor.reindex(stock.index)}).dropna().to_numpy()
    returns = both[1:] / both[:-1] - 1.0
    return returns[:, 0], returns[:, 1]


def row(frame: pd.DataFrame, day: str) -> pd.Series:
    return frame.loc[pd.Timestamp(day)]


# --- acceptance 1: MARA's beta against numpy.polyfit on independently aligned returns ---------------


def test_mara_beta_to_ibit_equals_polyfit_on_returns_aligned_from_the_csv_files(market_db):
    stock, factor = independent_returns(yahoo_closes(MARA_CSV), yahoo_closes(IBIT_CSV))
    expected = np.polyfit(factor, stock, 1)[0]
    assert beta_stats(company_returns(market_db, "MARA", "ibit")).beta == pytest.approx(expected, abs=1e-9)


def test_mara_beta_to_btc_equals_polyfit_on_returns_aligned_from_the_csv_files(market_db):
    stock, factor = independent_returns(yahoo_closes(MARA_CSV), coingecko_closes())
    expected = np.polyfit(factor, stock, 1)[0]
    assert beta_stats(company_returns(market_db, "MARA", "btc")).beta == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("factor", ["ibit", "btc"])
def test_lens_beta_equals_polyfit_on_its_own_aligned_frame(market_db, factor):
    returns = company_returns(market_db, "MARA", factor)
    expected = np.polyfit(returns["factor"].to_numpy(), returns["stock"].to_numpy(), 1)[0]
    assert beta_stats(returns).beta == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("factor, count", [("ibit", 494), ("btc", 423)])
def test_mara_has_as_many_aligned_returns_as_the_independent_alignment(market_db, factor, count):
    factor_closes = yahoo_closes(IBIT_CSV) if factor == "ibit" else coingecko_closes()
    stock, _ = independent_returns(yahoo_closes(MARA_CSV), factor_closes)
    assert len(company_returns(market_db, "MARA", factor)) == len(stock) == count


# --- calendars -------------------------------------------------------------------------------------


def test_weekend_btc_days_are_not_rows(market_db):
    returns = company_returns(market_db, "MARA", "btc")
    assert set(returns.index.day_of_week) <= {0, 1, 2, 3, 4}
    assert pd.Timestamp("2024-03-09") not in returns.index and pd.Timestamp("2024-03-10") not in returns.index


def test_a_monday_stock_return_runs_from_the_friday_close(market_db):
    monday = row(company_returns(market_db, "MARA", "btc"), "2024-03-11")
    expected = raw_value(MARA_CSV, "2024-03-11", "Close") / raw_value(MARA_CSV, "2024-03-08", "Close") - 1
    assert monday["start"] == pd.Timestamp("2024-03-08")
    assert monday["stock"] == pytest.approx(expected, abs=1e-15)


def test_a_monday_stock_return_pairs_with_btcs_friday_to_monday_return(market_db):
    monday = row(company_returns(market_db, "MARA", "btc"), "2024-03-11")
    # the closes of Friday 03-08 and Monday 03-11 are CoinGecko's rows stamped 03-09 and 03-12
    friday = raw_value(COINGECKO, "2024-03-09", "price")
    expected = raw_value(COINGECKO, "2024-03-12", "price") / friday - 1
    assert monday["factor"] == pytest.approx(expected, abs=1e-15)


def test_the_btc_close_of_a_day_is_coingeckos_row_stamped_the_next_day(market_db):
    monday = row(company_returns(market_db, "MARA", "btc"), "2024-03-11")
    assert monday["factor_close"] == raw_value(COINGECKO, "2024-03-12", "price")
    assert monday["factor_close"] != raw_value(COINGECKO, "2024-03-11", "price")
    assert monday["factor_close"] != raw_value(YAHOO_BTC, "2024-03-11", "Close")


@pytest.mark.parametrize("factor", ["ibit", "btc"])
def test_a_market_holiday_is_not_a_row(market_db, factor):
    assert pd.Timestamp("2025-01-09") not in company_returns(market_db, "MARA", factor).index


def test_the_return_after_a_market_holiday_spans_it_for_the_stock(market_db):
    after = row(company_returns(market_db, "MARA", "btc"), "2025-01-10")
    expected = raw_value(MARA_CSV, "2025-01-10", "Close") / raw_value(MARA_CSV, "2025-01-08", "Close") - 1
    assert after["start"] == pd.Timestamp("2025-01-08")
    assert after["stock"] == pytest.approx(expected, abs=1e-15)


def test_the_return_after_a_market_holiday_spans_it_for_btc(market_db):
    after = row(company_returns(market_db, "MARA", "btc"), "2025-01-10")
    expected = raw_value(COINGECKO, "2025-01-11", "price") / raw_value(COINGECKO, "2025-01-09", "price") - 1
    assert after["factor"] == pytest.approx(expected, abs=1e-15)


# --- missing prices, no price series --------------------------------------------------------------------


def mara_without_march_2025(db) -> list[tuple[str, float]]:
    return [(day, value) for day, value in store.market_series(db, "px:MARA") if not day.startswith("2025-03-1")]


def test_a_gap_in_the_stock_prices_makes_the_next_return_span_it_on_both_sides(market_db):
    btc = store.market_series(market_db, "btc_usd")
    returns = aligned_returns(mara_without_march_2025(market_db), btc)
    after = row(returns, "2025-03-20")  # 03-10..03-19 dropped: the return runs from 03-07's close
    closes, btc_closes = dict(store.market_series(market_db, "px:MARA")), dict(btc)
    assert after["start"] == pd.Timestamp("2025-03-07")
    assert after["stock"] == pytest.approx(closes["2025-03-20"] / closes["2025-03-07"] - 1, abs=1e-15)
    assert after["factor"] == pytest.approx(btc_closes["2025-03-20"] / btc_closes["2025-03-07"] - 1, abs=1e-15)


def test_a_window_with_missing_prices_still_gives_a_finite_beta(market_db):
    returns = aligned_returns(mara_without_march_2025(market_db), store.market_series(market_db, "btc_usd"))
    window = returns.loc["2025-01-01":"2025-06-30"]
    stats = beta_stats(window)
    assert math.isfinite(stats.beta) and math.isfinite(stats.stderr_beta) and not window.isna().any().any()


def test_a_company_without_a_price_series_is_an_error_naming_the_series(market_db):
    with pytest.raises(NoData, match=r"no price series px:ZZZZ"):
        company_returns(market_db, "ZZZZ")


def test_the_peers_table_lists_a_company_without_prices_and_computes_the_others(bundled, theses):
    rows = {r["ticker"]: r for r in peers_table(bundled, ["MARA", "ZZZZ", "RIOT"], theses, SETTINGS)["companies"]}
    assert "no price series px:ZZZZ" in rows["ZZZZ"]["status"]
    assert all(rows[t]["status"] == "ok" and math.isfinite(rows[t]["beta_ibit"]) for t in ("MARA", "RIOT"))


def test_market_view_of_a_company_without_a_price_series_is_an_error_naming_the_series(market_db):
    with pytest.raises(NoData, match=r"px:ZZZZ"):
        market_view(market_db, "ZZZZ")


# --- rolling beta, hedge, market view -----------------------------------------------------------------------


def test_the_last_rolling_beta_is_the_ols_beta_of_the_last_window(market_db):
    returns = company_returns(market_db, "MARA", "ibit")
    last = rolling_beta(returns, 60).iloc[-1]
    expected = beta_stats(returns.iloc[-60:])
    assert last["beta"] == pytest.approx(expected.beta, abs=1e-9)
    assert last["r2"] == pytest.approx(expected.r2, abs=1e-9)


def test_the_hedge_ratio_is_minus_beta_with_its_standard_error(market_db):
    stats = beta_stats(company_returns(market_db, "MARA", "ibit"))
    hedge = hedge_ratio(stats, "MARA", "IBIT")
    assert (hedge.ratio, hedge.stderr) == (-stats.beta, stats.stderr_beta)
    assert hedge.describe().startswith(f"short ${stats.beta:.2f} of IBIT per $1 long MARA")


def test_market_view_as_of_a_day_uses_no_later_price(market_db):
    view = market_view(market_db, "MARA", date(2025, 6, 30), settings=SETTINGS, factor="ibit")
    returns = company_returns(market_db, "MARA", "ibit").loc[:"2025-06-30"]
    assert view["as_of"] == "2025-06-30"
    assert view["value"] == round(100 * (1 - beta_stats(returns.iloc[-60:]).r2), 1)


# --- event study --------------------------------------------------------------------------------------------


def pooled_events(db):
    events = []
    for ticker in TICKERS:
        events += company_events(db, ticker, company_returns(db, ticker, "ibit"), SETTINGS)
    return events


def test_abnormal_return_uses_the_market_model_fitted_before_the_event(bundled):
    returns = company_returns(bundled, "MARA", "ibit")
    [event] = [e for e in company_events(bundled, "MARA", returns, SETTINGS) if e.disclosed == date(2024, 12, 3)]
    position = returns.index.get_loc(pd.Timestamp("2024-12-03"))
    estimation = returns.iloc[position - 5 - 120:position - 5]
    slope, intercept = np.polyfit(estimation["factor"], estimation["stock"], 1)
    window = returns.iloc[position:position + 3]
    abnormal = window["stock"] - (intercept + slope * window["factor"])
    assert event.ar == pytest.approx(abnormal.iloc[0], abs=1e-12)
    assert event.car == pytest.approx(abnormal.sum(), abs=1e-12)


def test_a_weekend_disclosure_reacts_on_the_monday(market_db):
    returns = company_returns(market_db, "MARA", "ibit")
    [event] = event_study(returns, "MARA", [(date(2024, 11, 23), 1, ("power", "binding", "positive"))])
    assert event.event_day == date(2024, 11, 25)


def test_disclosures_with_overlapping_event_windows_are_one_event(bundled):
    events = company_events(bundled, "WULF", company_returns(bundled, "WULF", "ibit"), SETTINGS)
    [google] = [e for e in events if date(2025, 8, 14) in e.days]
    assert google.days == (date(2025, 8, 13), date(2025, 8, 14)) and google.event_day == date(2025, 8, 13)


def test_a_disclosure_before_the_price_data_is_skipped_with_the_reason(bundled):
    events = company_events(bundled, "CIFR", company_returns(bundled, "CIFR", "ibit"), SETTINGS)
    [old] = [e for e in events if e.disclosed == date(2021, 1, 11)]
    assert old.ar is None and old.skipped.startswith("before the price data")


def test_each_bucket_reports_how_many_events_entered_it(bundled):
    events = pooled_events(bundled)
    buckets = {b["bucket"]: b for b in bucket_table(events, 5)}
    used = [e for e in events if not e.skipped]
    for name in ("contracted_compute/binding/positive", "financing/binding/neutral", "mining/binding/negative"):
        assert buckets[name]["n"] == sum(1 for e in used if tuple(name.split("/")) in e.tags)


def test_a_bucket_with_too_few_events_is_refused_without_figures(bundled):
    returns = company_returns(bundled, "MARA", "ibit")
    buckets = [b for b in bucket_table(company_events(bundled, "MARA", returns, SETTINGS), min_events=5)
               if b["n"] < 5]  # MARA's six mining events (issue 15.6 samples) fill one coarse bucket
    assert buckets and all(b["status"].startswith(f"too few events (n={b['n']}") for b in buckets)
    assert all(b["mean_ar"] is None and b["t_ar"] is None and b["mean_car"] is None and b["t_car"] is None
               for b in buckets)


def test_a_bucket_with_enough_events_reports_its_mean_and_t_statistic(bundled):
    events = [e for e in pooled_events(bundled) if not e.skipped]
    [bucket] = [b for b in bucket_table(events, 5) if b["bucket"] == "contracted_compute/binding/positive"]
    cars = np.array([e.car for e in events if ("contracted_compute", "binding", "positive") in e.tags])
    assert bucket["status"] == "ok" and bucket["n"] == len(cars) >= 5
    assert bucket["mean_car"] == pytest.approx(cars.mean(), abs=1e-12)
    assert bucket["t_car"] == pytest.approx(cars.mean() / (cars.std(ddof=1) / math.sqrt(len(cars))), abs=1e-9)


# --- settings -------------------------------------------------------------------------------------------------


def test_the_repository_config_holds_the_market_lens_settings():
    settings = load_config(ROOT / "config.toml").market_lens
    assert (settings.windows, settings.estimation_days, settings.min_events) == ([60, 120], 120, 5)


def test_a_minimum_estimation_window_above_the_window_is_a_config_error_naming_it(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text("[market_lens]\nestimation_days = 50\nmin_estimation_days = 60\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="market_lens.*min_estimation_days"):
        load_config(path)


# --- CLI ------------------------------------------------------------------------------------------------------


def monitor(db_path: Path, *args: str):
    return CliRunner().invoke(app, ["--config", str(ROOT / "config.toml"), "--db", str(db_path), *args])


def test_cli_market_json_gives_mara_beta_hedge_timeline_and_event_study(bundled_path, market_db):
    result = monitor(bundled_path, "market", "MARA", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["full"]["beta"] == pytest.approx(beta_stats(company_returns(market_db, "MARA", "ibit")).beta)
    assert report["hedge"]["latest"]["ratio"] == -report["latest"][0]["beta"]
    assert report["timeline"] and report["event_study"]["buckets"] and report["market_view"]["value"] > 0


def test_cli_market_prints_the_exposure_hedge_timeline_and_event_tables(bundled_path):
    result = monitor(bundled_path, "market", "MARA")
    assert result.exit_code == 0, result.output
    # "too few events" wraps in its cell since MARA's mining bucket has figures (issue 15.6 samples)
    for part in ("BTC exposure", "short $", "re-rating timeline", "event study of MARA", "too few"):
        assert part in result.stdout


def test_cli_market_peers_prints_every_watched_company(bundled_path):
    result = monitor(bundled_path, "market", "--peers")
    assert result.exit_code == 0, result.output
    assert "peers" in result.stdout and all(ticker in result.stdout for ticker in TICKERS)


def test_cli_market_of_a_company_without_prices_exits_2_naming_the_series(bundled_path):
    result = monitor(bundled_path, "market", "ZZZZ")
    assert result.exit_code == 2 and "px:ZZZZ" in result.stderr


def test_cli_market_needs_a_ticker_or_peers(bundled_path):
    result = monitor(bundled_path, "market")
    assert result.exit_code == 2 and "TICKER or --peers" in result.stderr


def test_cli_market_has_help():
    result = CliRunner().invoke(app, ["market", "--help"])
    assert result.exit_code == 0 and "--peers" in result.stdout and "--factor" in result.stdout


def test_the_scorecard_shows_the_market_view_apart_from_cash_flow_backing(replayed_db):
    import json

    from typer.testing import CliRunner

    from monitor.cli import app

    runner = CliRunner()
    db = str(replayed_db)
    config = str(ROOT / "config.toml")
    table = runner.invoke(app, ["--config", config, "--db", db, "scorecard", "MARA"], env={"COLUMNS": "80"}).stdout
    assert "Market view: BTC" in table and table.count("(informational)") == 1
    result = runner.invoke(app, ["--config", config, "--db", db, "scorecard", "MARA", "--json"])
    [card] = json.loads(result.stdout)["scorecards"]
    assert "market_view" not in card["pillars"] and card["market_view"]["value"] > 0
    earlier = runner.invoke(app, ["--config", config, "--db", db, "scorecard", "MARA", "--as-of", "2023-06-30", "--json"])
    [old] = json.loads(earlier.stdout)["scorecards"]
    assert old["market_view"]["value"] is None and "px:MARA" in old["market_view"]["why"][0]
