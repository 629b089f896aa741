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
    weak: Patterns  # `min_weak` different matches are enough
    veto: Patterns  # any match rules the type out
    min_weak: int
    excluded_by: tuple[str, ...]  # types that, when found, take the sentence's figures instead


@dataclass(frozen=True)
class DirectionRule:
    cues: tuple[tuple[str, Patterns], ...]  # (direction, cues) in the order they are tried
    default_binding: str
    default_soft: str


@dataclass(frozen=True)
class Rules:
    version: str
    boilerplate: Patterns
    types: dict[str, TypeRule]
    soft_override: dict[str, Patterns]  # soft even when a binding cue matches ("If exercised, ... would")
    negation: Patterns  # "did not enter into": no contract, and a step back
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
        types={t: loader.type_rule(t) for t in TYPES},
        soft_override={k: loader.patterns("commitment.toml", f"soft_override.{k}") for k in ("all",) + TYPES},
        negation=loader.patterns("commitment.toml", "negation"),
        soft={k: loader.patterns("commitment.toml", f"soft.{k}") for k in ("all",) + TYPES},
        binding={k: loader.patterns("commitment.toml", f"binding.{k}") for k in ("all",) + TYPES},
        default_commitment={t: loader.choice("commitment.toml", f"default.{t}", ("binding", "soft")) for t in TYPES},
        direction={t: loader.direction(t) for t in TYPES},
        scales={k.lower(): float(v) for k, v in loader.get("fields.toml", "scales").items()},
        stale=loader.patterns("fields.toml", "stale"),
        not_a_field=loader.patterns("fields.toml", "not_a_field"),
        counterparties=tuple(sorted(loader.get("entities.toml", "counterparties"), key=len, reverse=True)),
        counterparty_patterns=loader.patterns("entities.toml", "patterns", case_sensitive=True),
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

    def patterns(self, file: str, key: str, case_sensitive: bool = False) -> Patterns:
        values = self.get(file, key)
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise ConfigError(f"{self.rules_dir / file}: {key}: must be a list of regular expressions")
        compiled = []
        for i, value in enumerate(values):
            try:
                compiled.append(re.compile(value, 0 if case_sensitive else re.IGNORECASE))
            except re.error as exc:
                raise ConfigError(f"{self.rules_dir / file}: {key}[{i}]: bad pattern {value!r}: {exc}") from exc
        return tuple(compiled)

    def choice(self, file: str, key: str, allowed: tuple[str, ...]) -> str:
        value = self.get(file, key)
        if value not in allowed:
            raise ConfigError(f"{self.rules_dir / file}: {key}: {value!r} is not one of {allowed}")
        return str(value)

    def type_rule(self, type_: str) -> TypeRule:
        table = self.get("types.toml", type_)
        excluded_by = tuple(table.get("excluded_by", []))
        for other in excluded_by:
            if other not in TYPES:
                raise ConfigError(f"{self.rules_dir / 'types.toml'}: {type_}.excluded_by: unknown type {other!r}")
        return TypeRule(
            strong=self.patterns("types.toml", f"{type_}.strong"),
            weak=self.patterns("types.toml", f"{type_}.weak"),
            veto=self.patterns("types.toml", f"{type_}.veto"),
            min_weak=int(table.get("min_weak", 2)),
            excluded_by=excluded_by,
        )

    def direction(self, type_: str) -> DirectionRule:
        directions = ("positive", "negative", "neutral")
        table = self.get("direction.toml", type_)
        order = table.get("order", ["negative", "positive", "neutral"])
        if sorted(order) != sorted(directions):
            raise ConfigError(f"{self.rules_dir / 'direction.toml'}: {type_}.order: must list {directions}")
        return DirectionRule(
            cues=tuple((d, self.patterns("direction.toml", f"{type_}.{d}")) for d in order),
            default_binding=self.choice("direction.toml", f"{type_}.default_binding", directions),
            default_soft=self.choice("direction.toml", f"{type_}.default_soft", directions),
        )


def any_match(patterns: Patterns, text: str) -> bool:
    return any(p.search(text) for p in patterns)
