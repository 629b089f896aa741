"""Load the extraction rules from ``rules/*.toml`` into compiled, immutable objects.

Everything an analyst may want to tune — the cues that say what a sentence is
about, modality cues for binding vs soft, direction cues, boilerplate, units,
known counterparties — is data. A broken pattern is a ConfigError naming the
file and key, raised at start-up rather than on the first document.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from monitor.errors import ConfigError
from monitor.extract.model import TYPES

RULE_FILES = ("boilerplate.toml", "types.toml", "commitment.toml", "direction.toml", "fields.toml",
              "entities.toml")

Patterns = tuple[re.Pattern[str], ...]


@dataclass(frozen=True)
class TypeRule:
    strong: Patterns  # one match is enough
    weak: Patterns  # two different matches are enough
    veto: Patterns  # any match rules the type out


@dataclass(frozen=True)
class DirectionRule:
    negative: Patterns
    positive: Patterns
    neutral: Patterns
    default_binding: str
    default_soft: str


@dataclass(frozen=True)
class Rules:
    version: str
    boilerplate: Patterns
    types: dict[str, TypeRule]
    soft: dict[str, Patterns]  # per type, "all" applying to every type
    binding: dict[str, Patterns]
    default_commitment: dict[str, str]
    direction: dict[str, DirectionRule]
    scales: dict[str, float]
    stale: Patterns  # figures after these belong to an earlier deal
    not_a_field: Patterns  # "$25.91 per share": a figure that is not the disclosure's value
    counterparties: tuple[str, ...]
    counterparty_patterns: Patterns
    not_counterparties: frozenset[str]


def load_rules(rules_dir: Path) -> Rules:
    raw: dict[str, dict[str, Any]] = {}
    digest = hashlib.sha256()
    for name in RULE_FILES:
        path = rules_dir / name
        try:
            data = path.read_bytes()
            raw[name] = tomllib.loads(data.decode("utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{path}: rules file not found") from None
        except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
        digest.update(name.encode() + b"\0" + data)
    loader = _Loader(rules_dir, raw)
    return Rules(
        version=digest.hexdigest()[:16],
        boilerplate=loader.patterns("boilerplate.toml", "sentence"),
        types={t: TypeRule(*(loader.patterns("types.toml", f"{t}.{k}") for k in ("strong", "weak", "veto")))
               for t in TYPES},
        soft={k: loader.patterns("commitment.toml", f"soft.{k}") for k in ("all",) + TYPES},
        binding={k: loader.patterns("commitment.toml", f"binding.{k}") for k in ("all",) + TYPES},
        default_commitment={t: loader.choice("commitment.toml", f"default.{t}", ("binding", "soft")) for t in TYPES},
        direction={t: loader.direction(t) for t in TYPES},
        scales={k.lower(): float(v) for k, v in loader.get("fields.toml", "scales").items()},
        stale=loader.patterns("fields.toml", "stale"),
        not_a_field=loader.patterns("fields.toml", "not_a_field"),
        counterparties=tuple(sorted(loader.get("entities.toml", "counterparties"), key=len, reverse=True)),
        counterparty_patterns=loader.patterns("entities.toml", "patterns"),
        not_counterparties=frozenset(n.lower() for n in loader.get("entities.toml", "not_counterparties")),
    )


class _Loader:
    def __init__(self, rules_dir: Path, raw: dict[str, dict[str, Any]]) -> None:
        self.rules_dir = rules_dir
        self.raw = raw

    def get(self, file: str, key: str) -> Any:
        node: Any = self.raw[file]
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                raise ConfigError(f"{self.rules_dir / file}: {key}: missing")
            node = node[part]
        return node

    def patterns(self, file: str, key: str) -> Patterns:
        values = self.get(file, key)
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise ConfigError(f"{self.rules_dir / file}: {key}: must be a list of regular expressions")
        compiled = []
        for i, value in enumerate(values):
            try:
                compiled.append(re.compile(value, re.IGNORECASE))
            except re.error as exc:
                raise ConfigError(f"{self.rules_dir / file}: {key}[{i}]: bad pattern {value!r}: {exc}") from exc
        return tuple(compiled)

    def choice(self, file: str, key: str, allowed: tuple[str, ...]) -> str:
        value = self.get(file, key)
        if value not in allowed:
            raise ConfigError(f"{self.rules_dir / file}: {key}: {value!r} is not one of {allowed}")
        return str(value)

    def direction(self, type_: str) -> DirectionRule:
        directions = ("positive", "negative", "neutral")
        return DirectionRule(
            negative=self.patterns("direction.toml", f"{type_}.negative"),
            positive=self.patterns("direction.toml", f"{type_}.positive"),
            neutral=self.patterns("direction.toml", f"{type_}.neutral"),
            default_binding=self.choice("direction.toml", f"{type_}.default_binding", directions),
            default_soft=self.choice("direction.toml", f"{type_}.default_soft", directions),
        )


def any_match(patterns: Patterns, text: str) -> bool:
    return any(p.search(text) for p in patterns)
