"""Load and validate ``config.toml``.

Settings are small pydantic models with explicit defaults; unknown keys and wrong
types fail at start-up with one message naming the key, because a daemon that
runs unattended must not discover a typo at 3 a.m. Secrets are never stored in
the file: the file names the environment variables that hold them.
"""

from __future__ import annotations

import ipaddress
import os
import re
import string
import tomllib
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import lxml.etree
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from monitor.errors import ConfigError
from monitor.market.series import MarketFormat, check_series_name

DEFAULT_FORMS = ["8-K", "8-K/A", "10-Q", "10-Q/A", "10-K", "10-K/A", "6-K", "6-K/A", "20-F", "20-F/A", "425"]

# SEC asks for "Sample Company Name AdminContact@<sample company domain>.com";
# it rejects agents that carry URLs or parentheses.
_USER_AGENT = re.compile(r"^[A-Za-z0-9][\w .,&'-]*[ ]+[\w.+-]+@[\w-]+(\.[\w-]+)+$")
# A line break or tab in a header value or URL fails every request later, or splits a header.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


# Upper bounds: a value that validates must not overflow a timedelta or a scheduler later (1e308 minutes).
YEAR_MINUTES = 366 * 24 * 60
YEAR_HOURS = 366 * 24
DAY_SECONDS = 24 * 3600


class _Strict(BaseModel):
    # inf and nan are no interval, timeout or factor: refused everywhere, naming the key.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class MonitorSettings(_Strict):
    db: Path = Path("data/monitor.db")
    network: Literal["auto", "online", "offline"] = "auto"
    samples_dir: Path = Path("data/samples")
    rules_dir: Path = Path("rules")
    model_path: Path = Path("models/reader.joblib")
    theses_dir: Path = Path("rules/theses")
    log_format: Literal["text", "json"] = "text"


class SecSettings(_Strict):
    user_agent: str = ""
    user_agent_env: str = "MONITOR_SEC_USER_AGENT"
    www_url: str = "https://www.sec.gov"
    data_url: str = "https://data.sec.gov"
    hosts: list[str] = ["www.sec.gov", "data.sec.gov", "efts.sec.gov"]
    # SEC's fair-access ceiling is 10/s and users were answered 429 at 9.7-9.9/s: stay well under it.
    max_requests_per_second: float = Field(8.0, gt=0, lt=10.0)
    rate_limit_pause_seconds: float = Field(600.0, ge=0)
    forms: list[str] = DEFAULT_FORMS
    exhibits: list[str] = ["EX-99*"]
    latest_feed_page_size: int = Field(100, ge=10, le=100)
    latest_feed_max_pages: int = Field(20, ge=1)
    backfill_days: int = Field(120, ge=0)
    tickers_file: Path = Path("data/company_tickers.json")

    def resolved_user_agent(self) -> str:
        """The User-Agent from the environment variable, else from the file."""
        return secret_from_env(self.user_agent_env) or self.user_agent.strip()

    @field_validator("user_agent")
    @classmethod
    def _check_user_agent(cls, value: str) -> str:
        if value.strip():
            check_user_agent(value)
        return value


class HttpSettings(_Strict):
    connect_timeout: float = Field(5.0, gt=0)
    read_timeout: float = Field(20.0, gt=0)
    total_timeout: float = Field(60.0, gt=0)
    max_body_bytes: int = Field(25_000_000, gt=0)
    max_retries: int = Field(3, ge=0)
    backoff_base_seconds: float = Field(1.0, ge=0)
    backoff_max_seconds: float = Field(60.0, ge=0)
    other_hosts_per_second: float = Field(2.0, gt=0)
    # Addresses or networks that links from documents (and redirects) may reach although not public:
    # an intranet mirror, or the tests' 127.0.0.1. Empty: only public addresses.
    allow_private_addresses: list[str] = []

    @field_validator("allow_private_addresses")
    @classmethod
    def _check_networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            ipaddress.ip_network(entry)  # ValueError names the entry; pydantic names the key
        return value


class ScheduleSettings(_Strict):
    edgar_poll_minutes: float = Field(10.0, gt=0, le=YEAR_MINUTES)
    feeds_poll_minutes: float = Field(15.0, gt=0, le=YEAR_MINUTES)
    reconcile_hours: float = Field(6.0, gt=0, le=YEAR_HOURS)
    tickers_refresh_hours: float = Field(24.0, gt=0, le=YEAR_HOURS)
    extract_minutes: float = Field(1.0, gt=0, le=YEAR_MINUTES)
    market_hours: float = Field(6.0, gt=0, le=YEAR_HOURS)


def _listed_once(what: str, names: list[str]) -> None:
    """ValueError naming the first name listed twice (a second entry would silently shadow the first)."""
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"{what} {name} is listed twice")
        seen.add(name)


def _http_url(url: str) -> str:
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"{url!r} must be an http(s) URL")
    return url


class MarketSource(_Strict):
    """One daily series and where to fetch it: ``[[market.sources]]``."""

    series: str
    url: str
    format: MarketFormat

    @field_validator("series")
    @classmethod
    def _series(cls, value: str) -> str:
        return check_series_name(value)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _http_url(value)


DEFAULT_MARKET_SOURCES = [
    MarketSource(series="btc_usd", format="coingecko_json",
                 url="https://api.coingecko.com/api/v3/coins/bitcoin/market_chart?vs_currency=usd&days=365&interval=daily"),
    MarketSource(series="hy_oas", format="fred_csv", url="https://fred.stlouisfed.org/graph/fredgraph.csv?id=BAMLH0A0HYM2"),
    MarketSource(series="ust_10y", format="fred_csv", url="https://fred.stlouisfed.org/graph/fredgraph.csv?id=DGS10"),
]


class MarketSettings(_Strict):
    """Daily market series. ``sources`` are fetched as listed (listing any replaces the defaults);
    besides them, ``px:TICKER`` is fetched for every watched company and every ``price_symbols``
    entry from ``price_url_template`` (``{symbol}`` is the ticker in lower case; "" turns this off),
    unless ``sources`` already has that series."""

    sources: list[MarketSource] = DEFAULT_MARKET_SOURCES
    price_url_template: str = "https://stooq.com/q/d/l/?s={symbol}.us&i=d"
    price_format: MarketFormat = "stooq_csv"
    price_symbols: list[str] = ["IBIT"]

    @field_validator("sources")
    @classmethod
    def _unique_series(cls, value: list[MarketSource]) -> list[MarketSource]:
        _listed_once("series", [source.series for source in value])
        return value

    @field_validator("price_url_template")
    @classmethod
    def _template(cls, value: str) -> str:
        if not value:
            return value
        if "{symbol}" not in value:
            raise ValueError(f"{value!r} has no {{symbol}} placeholder")
        try:  # parsed, not formatted: "{symbol.__class__}" or "{symbol:>999999999}" must not run
            fields = [(name, spec, conversion) for _, name, spec, conversion in string.Formatter().parse(value)
                      if name is not None]
        except ValueError as exc:
            raise ValueError(f"{value!r}: only {{symbol}} may be in braces ({exc})") from None
        if any(field != ("symbol", "", None) for field in fields):
            raise ValueError(f"{value!r}: only {{symbol}} may be in braces")
        return _http_url(value)

    @field_validator("price_symbols")
    @classmethod
    def _symbols(cls, value: list[str]) -> list[str]:
        return [check_series_name(f"px:{symbol.strip().upper()}")[3:] for symbol in value]


class MarketLensSettings(_Strict):
    """``[market_lens]``: BTC beta, hedge ratio and event study of ``monitor market``.

    ``factor`` is the BTC factor: "ibit" (px:IBIT, closes at the stocks' own NYSE close and is the
    instrument a hedge would trade) or "btc" (btc_usd, the UTC-day close). ``windows`` are rolling
    windows in trading days (the first is the one the latest beta, hedge ratio and market view use).
    The event study fits its market model on ``estimation_days`` returns ending ``estimation_gap_days``
    before the event (at least ``min_estimation_days``), sums abnormal returns over days 0..``car_days``,
    and reports a bucket only with ``min_events`` events or more.
    """

    factor: Literal["btc", "ibit"] = "ibit"
    windows: list[Annotated[int, Field(ge=10)]] = Field([60, 120], min_length=1)
    estimation_days: int = Field(120, ge=20)
    min_estimation_days: int = Field(60, ge=10)
    estimation_gap_days: int = Field(5, ge=0)
    car_days: int = Field(2, ge=0, le=20)
    min_events: int = Field(5, ge=2)
    compute_pillar: str = "contracted_compute"

    @model_validator(mode="after")
    def _estimation(self) -> "MarketLensSettings":
        if self.min_estimation_days > self.estimation_days:
            raise ValueError(f"min_estimation_days ({self.min_estimation_days}) exceeds estimation_days "
                             f"({self.estimation_days})")
        return self


# The fetch jobs of monitor/pipeline.py (fetch_jobs), online and offline: keys of [health] stale_after_minutes.
FetchJobName = Literal["edgar-latest", "edgar-reconcile", "feeds", "tickers", "market", "replay", "market-replay"]


class HealthSettings(_Strict):
    """``[health]``: when ``monitor status`` calls a source stale.

    A source is stale when it has not succeeded within its window: ``stale_factor`` times its job's
    schedule interval (one failed poll is weather, several in a row is an outage), or the minutes given
    for that job in ``stale_after_minutes`` (e.g. ``{ edgar-latest = 60 }``).
    """

    stale_factor: float = Field(3.0, ge=1.0, le=100.0)
    stale_after_minutes: dict[FetchJobName, Annotated[float, Field(gt=0, le=YEAR_MINUTES)]] = {}


class SecretsSettings(_Strict):
    """Names of environment variables; the values never enter the file or the DB."""

    slack_webhook_env: str = "MONITOR_SLACK_WEBHOOK"
    smtp_password_env: str = "MONITOR_SMTP_PASSWORD"


class SlackSettings(_Strict):
    base_link: str = ""  # where "… and N more" points when evidence is cut (e.g. a Datasette page)


class EmailSettingsFile(_Strict):
    """SMTP settings; the password comes from the variable named by secrets.smtp_password_env."""

    host: str = "localhost"
    port: int = Field(587, gt=0, lt=65536)
    security: Literal["starttls", "ssl", "none"] = "starttls"
    username: str = ""
    sender: str = ""
    recipients: list[str] = []
    timeout_seconds: float = Field(20.0, gt=0, le=300)  # within the outbox's claim lease (10 min)


class NotifySettings(_Strict):
    channels: list[Literal["slack", "email"]] = []
    batch_window_minutes: float = Field(10.0, ge=0, le=24 * 60)
    max_attempts: int = Field(8, ge=1, le=100)
    retry_base_seconds: float = Field(30.0, gt=0, le=DAY_SECONDS)
    deliver_seconds: float = Field(30.0, gt=0, le=DAY_SECONDS)
    source_failure_threshold: int = Field(3, ge=1)
    push_history: bool = False  # push a first run's or a backfill's alerts too (as `run --notify-history`)
    digest_day_of_week: Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"] = "mon"
    digest_time: str = Field("07:30", pattern=r"^\d{2}:\d{2}$")
    digest_timezone: str = "UTC"
    digest_dir: Path = Path("data/digests")
    slack: SlackSettings = SlackSettings()
    email: EmailSettingsFile = EmailSettingsFile()

    @field_validator("digest_time")
    @classmethod
    def _clock_time(cls, value: str) -> str:
        hour, minute = (int(part) for part in value.split(":"))
        if hour > 23 or minute > 59:
            raise ValueError(f"{value!r} is not a time of day (HH:MM, 00:00 to 23:59)")
        return value

    @field_validator("digest_timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA time zone (e.g. UTC, America/New_York)") from None
        return value

    def digest_clock(self) -> tuple[int, int]:
        """``digest_time`` as (hour, minute)."""
        hour, minute = (int(part) for part in self.digest_time.split(":"))
        return hour, minute


class NewsroomSource(_Strict):
    """A company's press-release list page, read where the company publishes no feed.

    Each site lays out its list its own way, so the page is read with XPath expressions given in
    the config: ``item`` selects each release on the page; ``link``, ``title`` and ``date`` are read
    inside an item. An expression that does not compile is refused at start-up, naming its key; one
    that stops matching (the site redesigned) is the source's error at its next poll.
    """

    url: str
    item: str
    link: str = ".//a/@href"
    title: str = ""  # "" takes the text of the element the link came from
    date: str = ""  # "" leaves items undated: stored with their fetch time, flagged

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _http_url(value)

    @field_validator("item", "link", "title", "date")
    @classmethod
    def _xpath(cls, value: str, info: ValidationInfo) -> str:
        if not value and info.field_name in ("title", "date"):
            return value
        try:
            lxml.etree.XPath(value)
        except lxml.etree.XPathError as exc:
            raise ValueError(f"{value!r} is not an XPath expression: {exc}") from None
        return value


class Company(_Strict):
    ticker: str
    cik: int | None = None
    feeds: list[str] = []
    newsroom: NewsroomSource | None = None

    @field_validator("ticker")
    @classmethod
    def _upper(cls, value: str) -> str:
        value = value.strip().upper()
        if not re.fullmatch(r"[A-Z0-9.\-]{1,10}", value):
            raise ValueError(f"{value!r} is not a ticker symbol")
        return value

    @field_validator("feeds")
    @classmethod
    def _http_only(cls, value: list[str]) -> list[str]:
        for url in value:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"feed {url!r} must be an http(s) URL")
        return value


class Config(_Strict):
    monitor: MonitorSettings = MonitorSettings()
    sec: SecSettings = SecSettings()
    http: HttpSettings = HttpSettings()
    schedule: ScheduleSettings = ScheduleSettings()
    secrets: SecretsSettings = SecretsSettings()
    notify: NotifySettings = NotifySettings()
    market: MarketSettings = MarketSettings()
    market_lens: MarketLensSettings = MarketLensSettings()
    health: HealthSettings = HealthSettings()
    companies: list[Company] = []
    base_dir: Path = Path(".")

    def path(self, relative: Path) -> Path:
        """Resolve a path from the file against the config file's folder."""
        return relative if relative.is_absolute() else self.base_dir / relative

    @field_validator("companies")
    @classmethod
    def _unique(cls, value: list[Company]) -> list[Company]:
        _listed_once("ticker", [company.ticker for company in value])
        return value


def secret_from_env(variable: str, *, strip: bool = True) -> str:
    """The value of an environment variable holding a secret, stripped; "" when unset.

    A control character inside (a pasted line break or tab) is a start-up ConfigError naming the
    variable and never the value, rather than an httpx error with the value in it at the first send.
    """
    value = os.environ.get(variable, "")
    value = value.strip() if strip else value
    if _CONTROL.search(value):
        raise ConfigError(f"${variable}: contains a control character (a line break or tab?); "
                          "the value is not shown")
    return value


def check_user_agent(value: str) -> str:
    """Raise ValueError unless ``value`` is in SEC's declared form."""
    lowered = value.lower()
    if "://" in lowered or "www." in lowered or "(" in value or ")" in value or not _USER_AGENT.match(value.strip()):
        raise ValueError(
            f"{value!r} is not in SEC's form 'Company Name admin@example.com' "
            "(a name, then a contact e-mail; no URL or parentheses)"
        )
    return value.strip()


def load_config(path: Path) -> Config:
    """Read and validate a config file; every problem becomes one ConfigError."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    except RecursionError:  # tomllib recurses per nesting level
        raise ConfigError(f"{path}: not valid TOML: arrays or tables nested too deeply") from None
    if "base_dir" in raw:
        raise ConfigError(f"{path}: base_dir: not a setting (paths are relative to the config file)")
    try:
        return Config.model_validate({**raw, "base_dir": path.resolve().parent})
    except ValidationError as exc:
        raise ConfigError(f"{path}: {_describe(exc)}") from None


def _describe(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"]) or "(top level)"
        message = error["msg"].removeprefix("Value error, ")
        problems.append(f"{key}: {message}")
    return "; ".join(problems)


def require_sec_contact(config: Config) -> str:
    """The SEC User-Agent, or a start-up error when going online without one."""
    agent = config.sec.resolved_user_agent()
    if not agent:
        raise ConfigError(
            f"sec.user_agent: no SEC contact set; put 'Company Name admin@example.com' in "
            f"config.toml or ${config.sec.user_agent_env}, or run with --offline"
        )
    try:
        return check_user_agent(agent)
    except ValueError as exc:
        if secret_from_env(config.sec.user_agent_env):  # the value is not echoed from the environment
            raise ConfigError(f"sec.user_agent: ${config.sec.user_agent_env} is not in SEC's form 'Company Name "
                              "admin@example.com' (a name, then a contact e-mail; no URL or parentheses); "
                              "the value is not shown") from None
        raise ConfigError(f"sec.user_agent: {exc}") from None
