"""Offline market data: the bundled real files of ``data/samples/market/`` through the same parsers.

``manifest.toml`` there lists, per file, the series it feeds, the file and its format. When two
files feed the same series (``btc_usd``: Yahoo 2014-2024, then CoinGecko 2024-2025), the files
are merged in manifest order before anything is stored, and on a day both give, the file listed
later wins (the later, newer source). Each stored day keeps the file it came from as its source
(``replay:FILE``). Merging first makes a re-run a no-op: the same values are offered again and no
row changes. A file that fails to parse is logged, and its series is left untouched this run
(storing only the other files of that series would put the losing file's values back).
"""

from __future__ import annotations

import tomllib
from datetime import date
from pathlib import Path

import sqlite_utils
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from monitor import store
from monitor.errors import ConfigError, ParseError
from monitor.market.result import MarketPoll
from monitor.market.series import MarketFormat, Observation, check_series_name, parse

MARKET_REPLAY_SOURCE = "market-replay"


class MarketFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    series: str
    file: str
    format: MarketFormat
    note: str = ""

    @field_validator("series")
    @classmethod
    def _series(cls, value: str) -> str:
        return check_series_name(value)


def load_market_manifest(samples_dir: Path) -> list[MarketFile]:
    path = samples_dir / "manifest.toml"
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
        return [MarketFile.model_validate(entry) for entry in raw.get("file", [])]
    except FileNotFoundError:
        raise ConfigError(f"{path}: market replay manifest not found") from None
    except (OSError, tomllib.TOMLDecodeError, ValidationError) as exc:
        raise ConfigError(f"{path}: invalid market replay manifest: {exc}") from exc


def replay_market(db: sqlite_utils.Database, samples_dir: Path) -> MarketPoll:
    """Store every series of the bundled market files; re-running changes no row."""
    result = MarketPoll(MARKET_REPLAY_SOURCE)
    merged: dict[str, dict[date, tuple[float, str]]] = {}
    failed: set[str] = set()
    for entry in load_market_manifest(samples_dir):
        result.filings_seen += 1
        path = samples_dir / entry.file
        try:
            observations = parse(entry.format, path.read_bytes(), str(path))
        except (ParseError, OSError) as exc:
            cause = exc.cause if isinstance(exc, ParseError) else str(exc)
            store.record_error(db, MARKET_REPLAY_SOURCE, str(path), type(exc).__name__, cause)
            result.errors.append(f"{entry.file}: {cause}")
            failed.add(entry.series)
            continue
        days = merged.setdefault(entry.series, {})
        for obs in observations:
            days[obs.day] = (obs.value, f"replay:{entry.file}")  # a later file wins the day
    for series, days in merged.items():
        if series in failed:
            continue
        result.observations += len(days)
        by_source: dict[str, list[Observation]] = {}
        for day in sorted(days):
            value, source = days[day]
            by_source.setdefault(source, []).append(Observation(day, value))
        for source, observations in by_source.items():
            result.changed += store.save_observations(db, series, observations, source)
    store.record_poll(db, MARKET_REPLAY_SOURCE, ok=not result.errors, added=result.changed,
                      error="; ".join(result.errors[:3]))
    return result
