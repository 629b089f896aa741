"""Market data parsers on every real bundled file, the market store, and the offline market replay.

The files are the real downloads in data/samples/market/ (and the yfinance-format MARA file in
tests/fixtures/market/); see their SOURCES.md. Malformed inputs are real files with one line broken.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest

from monitor import store
from monitor.errors import ConfigError, ParseError
from monitor.market.replay import MARKET_REPLAY_SOURCE, load_market_manifest, replay_market
from monitor.market.series import Observation, check_series_name, parse
from tests.conftest import FIXTURES, SAMPLES
from tests.market_json import coingecko_json

MARKET = SAMPLES / "market"
YAHOO_BTC = MARKET / "BTC-USD_daily_2014-09-17_2024-03-31.csv"
COINGECKO_BTC = MARKET / "BTC-USD_coingecko_daily_2024-01-01_2025-09-11.csv"  # real CoinGecko export
DGS10 = MARKET / "FRED_DGS10_2012-07_2017-07.csv"
HY_DAILY = MARKET / "FRED_BAMLH0A0HYM2_2012-07_2017-07.csv"
HY_MONTHLY = MARKET / "HY_OAS_BAMLH0A0HYM2_monthly_ohlc_2019-01_2026-05.csv"
MARA_YFINANCE = FIXTURES / "market" / "MARA_daily_2025-05-07_2025-09-29.csv"
MARA_CLOSE = MARKET / "MARA_daily_close_2024-01-02_2025-12-31.csv"


def read(fmt: str, path: Path) -> list[Observation]:
    return parse(fmt, path.read_bytes(), path.name)


def values(observations: list[Observation]) -> dict[date, float]:
    return {obs.day: obs.value for obs in observations}


def summary(observations: list[Observation]) -> tuple[int, date, float, date, float]:
    first, last = observations[0], observations[-1]
    return len(observations), first.day, first.value, last.day, last.value


def parse_error(fmt: str, data: bytes, source: str = "test.csv") -> str:
    with pytest.raises(ParseError) as excinfo:
        parse(fmt, data, source)
    return str(excinfo.value)


def break_line(path: Path, line: int, new: str) -> bytes:
    """The real file with its 1-based ``line`` replaced by ``new``."""
    lines = path.read_bytes().decode().split("\n")
    lines[line - 1] = new
    return "\n".join(lines).encode()


# --- Yahoo ----------------------------------------------------------------------------------------


def test_yahoo_ohlcv_btc_file_gives_every_calendar_day_close() -> None:
    observations = read("yahoo_csv", YAHOO_BTC)

    assert summary(observations) == (3484, date(2014, 9, 17), 457.334015, date(2024, 3, 31), 70677.117188)


def test_yahoo_ohlcv_uses_close_not_adj_close_or_open() -> None:
    # 2024-03-30 row: Open 69893.445313, Close 69645.304688 (Adj Close equal for BTC)
    assert values(read("yahoo_csv", YAHOO_BTC))[date(2024, 3, 30)] == 69645.304688


CLOSES = {  # file: (count, first day, first close, last day, last close) as read from the real files
    "MARA_daily_close_2024-01-02_2025-12-31.csv": (502, date(2024, 1, 2), 22.93000030517578, 8.979999542236328),
    "CORZ_daily_close_2024-01-24_2025-12-31.csv": (487, date(2024, 1, 24), 3.440000057220459, 14.5600004196167),
    "IREN_daily_close_2024-01-02_2025-12-31.csv": (502, date(2024, 1, 2), 6.800000190734863, 37.77000045776367),
    "WULF_daily_close_2024-01-02_2025-12-31.csv": (502, date(2024, 1, 2), 2.299999952316284, 11.489999771118164),
    "CIFR_daily_close_2024-01-02_2025-12-31.csv": (502, date(2024, 1, 2), 4.130000114440918, 14.760000228881836),
    "HUT_daily_close_2024-01-02_2025-12-31.csv": (502, date(2024, 1, 2), 12.600000381469727, 45.939998626708984),
    "RIOT_daily_close_2024-01-02_2025-12-31.csv": (502, date(2024, 1, 2), 15.40999984741211, 12.670000076293945),
    "CLSK_daily_close_2024-01-02_2025-12-31.csv": (502, date(2024, 1, 2), 10.880000114440918, 10.119999885559082),
    "APLD_daily_close_2024-01-02_2025-12-31.csv": (502, date(2024, 1, 2), 6.960000038146973, 24.520000457763672),
    "IBIT_daily_close_2024-01-11_2025-12-31.csv": (495, date(2024, 1, 11), 26.6299991607666, 49.650001525878906),
}


@pytest.mark.parametrize("name", CLOSES, ids=[name.split("_")[0] for name in CLOSES])
def test_yahoo_date_close_files_give_every_trading_day(name: str) -> None:
    count, first_day, first_close, last_close = CLOSES[name]

    observations = read("yahoo_csv", MARKET / name)

    assert summary(observations) == (count, first_day, first_close, date(2025, 12, 31), last_close)


def test_ibit_has_no_row_for_the_closed_market_of_2025_01_09() -> None:
    days = values(read("yahoo_csv", MARKET / "IBIT_daily_close_2024-01-11_2025-12-31.csv"))

    assert date(2025, 1, 8) in days and date(2025, 1, 9) not in days and date(2025, 1, 10) in days


def test_yahoo_null_rows_are_skipped() -> None:
    data = break_line(MARA_CLOSE, 3, "2024-01-03,null")

    days = values(parse("yahoo_csv", data, "MARA.csv"))

    assert len(days) == 501 and date(2024, 1, 3) not in days


# --- yfinance ------------------------------------------------------------------------------------


def test_yfinance_file_gives_the_close_column() -> None:
    observations = read("yfinance_csv", MARA_YFINANCE)

    assert summary(observations) == (100, date(2025, 5, 7), 13.329999923706055, date(2025, 9, 29), 18.65999984741211)


def test_yfinance_closes_equal_the_yahoo_closes_on_all_shared_days() -> None:
    yfinance = values(read("yfinance_csv", MARA_YFINANCE))
    yahoo = values(read("yahoo_csv", MARA_CLOSE))

    assert {day: yahoo[day] for day in yfinance} == yfinance


def test_yfinance_file_with_two_symbols_is_refused_at_the_line_of_the_second() -> None:
    data = break_line(MARA_YFINANCE, 4, MARA_YFINANCE.read_text().split("\n")[3].replace("MARA,", "RIOT,", 1))

    assert "line 4: more than one symbol" in parse_error("yfinance_csv", data)


# --- Stooq (no real Stooq file is bundled: these are the real MARA rows in Stooq's column layout) -------


def stooq_from_yfinance() -> bytes:
    rows = [line.split(",") for line in MARA_YFINANCE.read_text().strip().split("\n")[1:]]
    lines = ["Date,Open,High,Low,Close,Volume"] + [",".join([r[1], r[2], r[3], r[4], r[5], r[6]]) for r in rows]
    return "\r\n".join(lines).encode() + b"\r\n"


def test_stooq_layout_gives_the_close_column() -> None:
    assert parse("stooq_csv", stooq_from_yfinance(), "mara.us") == read("yfinance_csv", MARA_YFINANCE)


@pytest.mark.parametrize("body", [b"No data", b"Exceeded the daily hits limit",
                                  b"<!DOCTYPE html><html><head><title>Verifying</title></head></html>"])
def test_stooq_text_answers_are_parse_errors_quoting_them(body: bytes) -> None:
    message = parse_error("stooq_csv", body, "https://stooq.com/q/d/l/?s=nope.us&i=d")

    assert message.startswith("https://stooq.com/q/d/l/?s=nope.us&i=d: line 1: not a Stooq daily CSV")
    assert repr(body.decode()) in message


# --- FRED ----------------------------------------------------------------------------------------


def test_fred_dgs10_skips_the_dot_holidays() -> None:
    observations = read("fred_csv", DGS10)

    assert summary(observations) == (1304 - 55, date(2012, 7, 9), 1.53, date(2017, 7, 6), 2.37)


def test_fred_dot_on_labor_day_2012_is_no_observation_not_a_zero() -> None:
    days = values(read("fred_csv", DGS10))

    assert date(2012, 9, 3) not in days and 0.0 not in days.values()


def test_fred_high_yield_oas_daily_file() -> None:
    observations = read("fred_csv", HY_DAILY)

    assert summary(observations) == (1302, date(2012, 7, 9), 6.44, date(2017, 7, 7), 3.83)


def test_fredgraph_observation_date_header_and_empty_gaps_read_like_the_classic_file() -> None:
    # fredgraph.csv today: "observation_date,DGS10" header and an empty cell for a missing day
    classic = DGS10.read_bytes()
    current = classic.replace(b"DATE,DGS10\n", b"observation_date,DGS10\n", 1).replace(b",.\n", b",\n")

    assert parse("fred_csv", current, "fredgraph.csv") == read("fred_csv", DGS10)


def test_fred_value_that_is_not_a_number_names_its_line() -> None:
    data = break_line(DGS10, 5, "2012-07-12,1.5x")

    assert parse_error("fred_csv", data, "DGS10.csv") == "DGS10.csv: line 5: '1.5x' is not a number"


# --- CoinGecko -----------------------------------------------------------------------------------


def test_coingecko_csv_midnight_stamp_is_the_previous_days_close() -> None:
    observations = read("coingecko_csv", COINGECKO_BTC)

    assert summary(observations) == (620, date(2023, 12, 31), 42208.202176186474,
                                     date(2025, 9, 10), 113975.32489468766)


def test_coingecko_row_stamped_2024_01_02_becomes_2024_01_01() -> None:
    # file row: "2024-01-02 00:00:00 UTC,44168.68118687473,..."
    assert values(read("coingecko_csv", COINGECKO_BTC))[date(2024, 1, 1)] == 44168.68118687473


def test_coingecko_close_is_near_yahoos_close_of_the_same_day_after_the_shift() -> None:
    coingecko, yahoo = values(read("coingecko_csv", COINGECKO_BTC)), values(read("yahoo_csv", YAHOO_BTC))
    shared = sorted(set(coingecko) & set(yahoo))
    gaps = sorted(abs(coingecko[day] / yahoo[day] - 1) for day in shared)

    assert len(shared) == 92 and gaps[len(gaps) // 2] < 0.001


def test_coingecko_csv_stamp_without_utc_names_its_line() -> None:
    data = break_line(COINGECKO_BTC, 4, "2024-01-03,44000.0,1,1")

    assert "line 4: '2024-01-03' is not a 'YYYY-MM-DD HH:MM:SS UTC' stamp" in parse_error("coingecko_csv", data)


def test_coingecko_json_gives_the_same_days_as_the_csv_export() -> None:
    assert parse("coingecko_json", coingecko_json(30), "api") == read("coingecko_csv", COINGECKO_BTC)[:30]


def test_coingecko_json_live_point_that_is_not_a_midnight_is_dropped() -> None:
    observations = parse("coingecko_json", coingecko_json(3, live_price=45000.0), "api")

    assert [obs.day for obs in observations] == [date(2023, 12, 31), date(2024, 1, 1), date(2024, 1, 2)]
    assert 45000.0 not in [obs.value for obs in observations]


@pytest.mark.parametrize("body, cause", [
    (b'{"status": {"error_code": 429, "error_message": "You\'ve exceeded the Rate Limit"}}', 'no "prices" list'),
    (b'{"prices": [[1704067200000, 42208.2], [1704153600000]]}', "prices[1]: '[1704153600000]' is not [unix_ms, price]"),
    (b'{"prices": [[1704067200000, 42208.2],\n [1704153600000, 44168.7]', "line 2: not JSON"),
])
def test_coingecko_json_errors_name_the_element_or_line(body: bytes, cause: str) -> None:
    assert cause in parse_error("coingecko_json", body, "api")


# --- monthly OHLC ------------------------------------------------------------------------------


def test_monthly_ohlc_gives_the_close_on_the_months_last_day() -> None:
    observations = read("monthly_ohlc_csv", HY_MONTHLY)  # rows are labelled 2019-01-01 .. 2026-05-01

    assert summary(observations) == (89, date(2019, 1, 31), 4.37, date(2026, 5, 31), 2.76)


# --- malformed input, any format ---------------------------------------------------------------


def test_a_short_row_names_its_line_and_the_source() -> None:
    data = break_line(YAHOO_BTC, 100, "2014-12-24,1,2")

    message = parse_error("yahoo_csv", data, "BTC-USD.csv")

    assert message.startswith("BTC-USD.csv: line 100: 3 fields where the header has 7")


def test_a_bad_date_names_its_line() -> None:
    data = break_line(MARA_CLOSE, 10, "01/12/2024,22.0")

    assert parse_error("yahoo_csv", data) == "test.csv: line 10: '01/12/2024' is not a YYYY-MM-DD date"


@pytest.mark.parametrize("value", ["0", "-1.5", "nan", "inf"])
def test_a_price_that_is_not_positive_and_finite_names_its_line(value: str) -> None:
    data = break_line(MARA_CLOSE, 7, f"2024-01-09,{value}")

    assert "line 7:" in parse_error("yahoo_csv", data)


def test_an_html_page_instead_of_csv_is_a_parse_error() -> None:
    page = b"<!DOCTYPE html>\n<html><body>Service unavailable</body></html>\n"

    assert "line 1: not a FRED CSV" in parse_error("fred_csv", page)


@pytest.mark.parametrize("data, cause", [(b"", "empty payload"), (b"Date,Close\n", "no observations"),
                                         (b"Date,Close\n2024-01-02,\xff\n", "not UTF-8")])
def test_empty_or_undecodable_payloads_are_parse_errors(data: bytes, cause: str) -> None:
    assert cause in parse_error("yahoo_csv", data)


def test_unknown_format_is_a_parse_error() -> None:
    assert "unknown market data format 'excel'" in parse_error("excel", b"x")


def test_a_repeated_day_keeps_the_later_row() -> None:
    data = MARA_CLOSE.read_bytes() + b"\n2025-12-31,9.5\n"

    assert values(parse("yahoo_csv", data, "MARA.csv"))[date(2025, 12, 31)] == 9.5


@pytest.mark.parametrize("name", ["btc_usd", "hy_oas", "ust_10y", "px:MARA", "px:BRK.B"])
def test_series_names(name: str) -> None:
    assert check_series_name(name) == name


@pytest.mark.parametrize("name", ["BTC", "px:mara", "px:", "btc usd", ""])
def test_bad_series_names(name: str) -> None:
    with pytest.raises(ValueError):
        check_series_name(name)


# --- store -----------------------------------------------------------------------------------------


@pytest.fixture
def db(tmp_path, closing):
    return closing(store.open_db(tmp_path / "m.db"))


def test_saving_observations_returns_the_rows_added(db) -> None:
    observations = read("yahoo_csv", MARA_CLOSE)

    assert store.save_observations(db, "px:MARA", observations, "test") == 502


def test_saving_the_same_observations_again_changes_nothing(db) -> None:
    observations = read("yahoo_csv", MARA_CLOSE)
    store.save_observations(db, "px:MARA", observations, "first", fetched_at="2026-01-01T00:00:00+00:00")

    again = store.save_observations(db, "px:MARA", observations, "second")

    row = db.execute("select source, fetched_at from market_observations where day = '2024-01-02'").fetchone()
    assert again == 0 and row == ("first", "2026-01-01T00:00:00+00:00")


def test_a_revised_value_replaces_the_old_one(db) -> None:
    observations = read("yahoo_csv", MARA_CLOSE)
    store.save_observations(db, "px:MARA", observations, "intraday")
    revised = [*observations[:-1], Observation(observations[-1].day, 9.01)]

    changed = store.save_observations(db, "px:MARA", revised, "close")

    assert changed == 1
    assert store.market_series(db, "px:MARA", start="2025-12-30") == [("2025-12-30", 9.329999923706055),
                                                                       ("2025-12-31", 9.01)]


def test_market_series_is_sorted_and_bounded_inclusively(db) -> None:
    store.save_observations(db, "ust_10y", reversed(read("fred_csv", DGS10)), "test")

    rows = store.market_series(db, "ust_10y", date(2012, 7, 9), date(2012, 7, 13))

    assert rows == [("2012-07-09", 1.53), ("2012-07-10", 1.53), ("2012-07-11", 1.54), ("2012-07-12", 1.50),
                    ("2012-07-13", 1.52)]


def test_list_market_series_gives_first_last_and_count(db) -> None:
    store.save_observations(db, "ust_10y", read("fred_csv", DGS10), "test")
    store.save_observations(db, "hy_oas", read("fred_csv", HY_DAILY), "test")

    assert store.list_market_series(db) == [
        {"series": "hy_oas", "first": "2012-07-09", "last": "2017-07-07", "count": 1302},
        {"series": "ust_10y", "first": "2012-07-09", "last": "2017-07-06", "count": 1249},
    ]


def test_an_unknown_series_is_empty(db) -> None:
    assert store.market_series(db, "px:NONE") == []


# --- offline replay -------------------------------------------------------------------------------


def test_the_market_manifest_lists_every_bundled_csv_once() -> None:
    files = [entry.file for entry in load_market_manifest(MARKET)]

    assert sorted(files) == sorted(path.name for path in MARKET.glob("*.csv"))


def test_replay_stores_every_series(db) -> None:
    result = replay_market(db, MARKET)

    assert result.errors == [] and result.filings_seen == 15
    assert {row["series"]: row["count"] for row in store.list_market_series(db)} == {
        "btc_usd": 3484 + 620 - 92, "hy_oas": 1302 + 89, "ust_10y": 1249, "px:IBIT": 495, "px:CORZ": 487,
        **{f"px:{t}": 502 for t in ("MARA", "IREN", "WULF", "CIFR", "HUT", "RIOT", "CLSK", "APLD")},
    }


def test_replay_lets_coingecko_win_the_days_it_shares_with_yahoo(db) -> None:
    replay_market(db, MARKET)

    rows = {day: value for day, value in store.market_series(db, "btc_usd", "2023-12-30", "2024-01-01")}
    sources = dict(db.execute("select day, source from market_observations where series = 'btc_usd' "
                              "and day in ('2023-12-30', '2023-12-31', '2024-03-31', '2024-04-01')").fetchall())

    assert rows["2023-12-31"] == 42208.202176186474 and rows["2024-01-01"] == 44168.68118687473
    assert sources == {"2023-12-30": f"replay:{YAHOO_BTC.name}", "2023-12-31": f"replay:{COINGECKO_BTC.name}",
                       "2024-03-31": f"replay:{COINGECKO_BTC.name}", "2024-04-01": f"replay:{COINGECKO_BTC.name}"}


def test_replaying_twice_changes_nothing(db) -> None:
    first = replay_market(db, MARKET)
    before = db.execute("select * from market_observations order by series, day").fetchall()

    again = replay_market(db, MARKET)

    assert first.changed == first.observations > 0
    assert again.changed == 0 and again.errors == []
    assert db.execute("select * from market_observations order by series, day").fetchall() == before


def copy_market_samples(tmp_path: Path) -> Path:
    folder = tmp_path / "market"
    folder.mkdir()
    for path in MARKET.iterdir():
        (folder / path.name).write_bytes(path.read_bytes())
    return folder


def test_a_broken_file_is_logged_and_leaves_its_series_alone_while_the_others_are_stored(db, tmp_path) -> None:
    folder = copy_market_samples(tmp_path)
    broken = folder / COINGECKO_BTC.name
    broken.write_bytes(break_line(COINGECKO_BTC, 3, "garbage"))

    result = replay_market(db, folder)

    series = {row["series"] for row in store.list_market_series(db)}
    [error] = store.status(db)["recent_errors"]
    assert "btc_usd" not in series and {"hy_oas", "ust_10y", "px:MARA"} <= series
    assert error["source"] == MARKET_REPLAY_SOURCE and error["error"] == "ParseError"
    assert error["url"] == str(broken) and error["cause"].startswith("line 3: 1 fields where the header has 4")
    assert result.errors and store.status(db)["sources"][0]["consecutive_failures"] == 1


def test_a_missing_market_manifest_is_a_config_error(tmp_path, db) -> None:
    with pytest.raises(ConfigError, match="market replay manifest not found"):
        replay_market(db, tmp_path)


def test_observation_days_are_one_apart_in_the_coingecko_file() -> None:
    days = [obs.day for obs in read("coingecko_csv", COINGECKO_BTC)]

    assert all(b - a == timedelta(days=1) for a, b in zip(days, days[1:]))
