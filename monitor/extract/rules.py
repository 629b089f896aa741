"""Load the extraction rules from ``rules/*.toml`` into compiled, immutable objects.

Everything an analyst may want to tune — the cues that say what a sentence is
about, modality cues for binding vs soft, direction cues, boilerplate, units,
known counterparties — is data. A broken pattern is a ConfigError naming the
file and key, raised at start-up rather than on the first document.
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import regex

from monitor.errors import ConfigError, RuleTimeout
from monitor.extract.model import TYPES

RULE_FILES = ("boilerplate.toml", "types.toml", "commitment.toml", "direction.toml", "fields.toml",
              "entities.toml")

CUE_SECONDS = 0.25  # one cue on one text; a sane cue takes microseconds
PROBE_SECONDS = 0.05  # one cue on one probe text when the rules load
# Texts that make a backtracking cue blow up (alternatives that overlap under a repeat, "(?:a|aa)+ x", on
# a run that almost matches): a rules file with a cue that cannot read them within PROBE_SECONDS is refused
# like a broken one. (The attack's "(?:\w+\s?)+ of contracted critical it capacity" no longer blows up at
# all: the regex module guards such repeats.)
PROBES = (
    " ".join(["capacity"] * 14),
    "The Company and its subsidiaries entered into the agreement to deliver additional megawatts of critical "
    "IT load to the tenant over the initial term of the lease, subject to customary closing conditions",
    "a" * 60 + "!",
    "a" * 40 + "b",
    "1,000,000 " * 12,
    "$ " * 60 + "x",
    "-" * 80 + "!",
)


class Cue:
    """A compiled cue that cannot hang the process: every match has a time budget.

    The ``regex`` module reads the same syntax as ``re`` (its V0 mode) and stops a match that runs past
    ``timeout``, which ``re`` cannot: one rule edit with nested quantifiers made a 95-character sentence
    take 20 s, holding the GIL, so every job and SIGTERM waited. A cue that overruns raises RuleTimeout
    naming the cue; the document is recorded as failed and the daemon goes on.
    """

    __slots__ = ("_compiled", "pattern", "where")

    def __init__(self, compiled: "regex.Pattern[str]", where: str) -> None:
        self._compiled = compiled
        self.pattern: str = compiled.pattern
        self.where = where

    def search(self, text: str, pos: int = 0) -> "regex.Match[str] | None":
        try:
            return self._compiled.search(text, pos, timeout=CUE_SECONDS)
        except TimeoutError:
            raise self._overran(text) from None

    def finditer(self, text: str) -> "list[regex.Match[str]]":
        try:
            return list(self._compiled.finditer(text, timeout=CUE_SECONDS))
        except TimeoutError:
            raise self._overran(text) from None

    def _overran(self, text: str) -> RuleTimeout:
        return RuleTimeout(f"{self.where}: cue {self.pattern!r} ran past {CUE_SECONDS} s on a "
                           f"{len(text)}-character text; fix the rule (nested quantifiers?)")

    def overruns(self) -> bool:
        """Whether any probe text takes it past PROBE_SECONDS."""
        try:
            for probe in PROBES:
                self._compiled.search(probe, timeout=PROBE_SECONDS)
        except TimeoutError:
            return True
        return False


Patterns = tuple[Cue, ...]


@dataclass(frozen=True)
class TypeRule:
    strong: Patterns  # one match is enough
    weak: Patterns  # `min_weak` different matches are enough
    veto: Patterns  # any match rules the type out
    min_weak: int
    excluded_by: tuple[str, ...]  # types that, when found, take the sentence's figures instead
    topic: Patterns  # the trained reader may call the type only when one of these matches


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
    soft_instrument: Patterns  # LOI, MOU, term sheet: soft whatever verb goes with them
    confirmation: Patterns  # "converted the LOI into a definitive lease": the instrument is superseded
    soft: dict[str, Patterns]  # per type, "all" applying to every type
    binding: dict[str, Patterns]
    default_commitment: dict[str, str]
    direction: dict[str, DirectionRule]
    setback: Patterns  # delays, terminations, defaults: negative for the thesis whatever the type
    trend_types: tuple[str, ...]  # types whose direction a one-way trend word decides (mining figures)
    trend_down: Patterns
    trend_up: Patterns
    scales: dict[str, float]
    stale: Patterns  # figures after these belong to an earlier deal
    not_a_field: Patterns  # "$25.91 per share": a figure that is not the disclosure's value
    counterparties: tuple[str, ...]
    counterparty_patterns: Patterns
    not_counterparties: frozenset[str]


def read_rules_file(path: Path) -> tuple[bytes, dict[str, Any]]:
    """A rules file's bytes (for the version hash) and its TOML; ConfigError naming the file and the problem."""
    try:
        data = path.read_bytes()
        return data, tomllib.loads(data.decode("utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: rules file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from exc
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    except RecursionError:  # tomllib recurses per nesting level
        raise ConfigError(f"{path}: not valid TOML: arrays or tables nested too deeply") from None


def load_rules(rules_dir: Path) -> Rules:
    raw: dict[str, dict[str, Any]] = {}
    digest = hashlib.sha256()
    for name in RULE_FILES:
        data, raw[name] = read_rules_file(rules_dir / name)
        digest.update(name.encode() + b"\0" + data)
    loader = _Loader(rules_dir, raw)
    return Rules(
        version=digest.hexdigest()[:16],
        boilerplate=loader.patterns("boilerplate.toml", "sentence"),
        types={t: loader.type_rule(t) for t in TYPES},
        soft_override={k: loader.patterns("commitment.toml", f"soft_override.{k}") for k in ("all",) + TYPES},
        negation=loader.patterns("commitment.toml", "negation"),
        soft_instrument=loader.patterns("commitment.toml", "soft_instrument"),
        confirmation=loader.patterns("commitment.toml", "confirmation"),
        soft={k: loader.patterns("commitment.toml", f"soft.{k}") for k in ("all",) + TYPES},
        binding={k: loader.patterns("commitment.toml", f"binding.{k}") for k in ("all",) + TYPES},
        default_commitment={t: loader.choice("commitment.toml", f"default.{t}", ("binding", "soft")) for t in TYPES},
        direction={t: loader.direction(t) for t in TYPES},
        setback=loader.patterns("direction.toml", "setback"),
        trend_types=loader.types_list("direction.toml", "trend.types"),
        trend_down=loader.patterns("direction.toml", "trend.down"),
        trend_up=loader.patterns("direction.toml", "trend.up"),
        scales=loader.scales(),
        stale=loader.patterns("fields.toml", "stale"),
        not_a_field=loader.patterns("fields.toml", "not_a_field"),
        counterparties=tuple(sorted(loader.strings("entities.toml", "counterparties"), key=len, reverse=True)),
        counterparty_patterns=loader.patterns("entities.toml", "patterns", case_sensitive=True),
        not_counterparties=frozenset(n.lower() for n in loader.strings("entities.toml", "not_counterparties")),
    )


_REQUIRED: Any = object()


class _Loader:
    """Typed access to the parsed files: a value of the wrong shape is a ConfigError naming file and key.

    Why check shapes here: the files are edited by hand while the daemon runs, and a
    string where a list belongs must not surface as a TypeError in the extractor.
    """

    def __init__(self, rules_dir: Path, raw: dict[str, dict[str, Any]]) -> None:
        self.rules_dir = rules_dir
        self.raw = raw

    def fail(self, file: str, key: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.rules_dir / file}: {key}: {problem}")

    def get(self, file: str, key: str, default: Any = _REQUIRED) -> Any:
        node: Any = self.raw[file]
        for part in key.split("."):
            if not isinstance(node, dict):
                raise self.fail(file, key, f"{part!r} is inside a value that is not a table")
            if part not in node:
                if default is _REQUIRED:
                    raise self.fail(file, key, "missing")
                return default
            node = node[part]
        return node

    def table(self, file: str, key: str) -> dict[str, Any]:
        value = self.get(file, key)
        if not isinstance(value, dict):
            raise self.fail(file, key, "must be a table")
        return value

    def strings(self, file: str, key: str, default: Any = _REQUIRED, what: str = "strings") -> list[str]:
        values = self.get(file, key, default)
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise self.fail(file, key, f"must be a list of {what}")
        return values

    def patterns(self, file: str, key: str, case_sensitive: bool = False, default: Any = _REQUIRED) -> Patterns:
        compiled = []
        for i, value in enumerate(self.strings(file, key, default, what="regular expressions")):
            where = f"{self.rules_dir / file}: {key}[{i}]"
            try:
                cue = Cue(regex.compile(value, regex.V0 | (0 if case_sensitive else regex.IGNORECASE)), where)
            except (regex.error, OverflowError, RecursionError, ValueError) as exc:  # a{99999999999}, nesting
                raise self.fail(file, f"{key}[{i}]", f"bad pattern {value!r}: {exc}") from None
            if cue.overruns():
                raise self.fail(file, f"{key}[{i}]", f"pattern {value!r} takes longer than {PROBE_SECONDS} s on "
                                                     "a short text (catastrophic backtracking); refused")
            compiled.append(cue)
        return tuple(compiled)

    def scales(self) -> dict[str, float]:
        scales = {}
        for name, value in self.table("fields.toml", "scales").items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise self.fail("fields.toml", f"scales.{name}", f"{value!r} is not a number")
            scales[name.lower()] = float(value)
        return scales

    def choice(self, file: str, key: str, allowed: tuple[str, ...]) -> str:
        value = self.get(file, key)
        if value not in allowed:
            raise self.fail(file, key, f"{value!r} is not one of {allowed}")
        return str(value)

    def types_list(self, file: str, key: str, default: Any = _REQUIRED) -> tuple[str, ...]:
        names = self.strings(file, key, default)
        for name in names:
            if name not in TYPES:
                raise self.fail(file, key, f"unknown type {name!r}")
        return tuple(names)

    def type_rule(self, type_: str) -> TypeRule:
        self.table("types.toml", type_)
        excluded_by = self.types_list("types.toml", f"{type_}.excluded_by", [])
        min_weak = self.get("types.toml", f"{type_}.min_weak", 2)
        if isinstance(min_weak, bool) or not isinstance(min_weak, int) or min_weak < 1:
            raise self.fail("types.toml", f"{type_}.min_weak", f"{min_weak!r} is not a whole number of at least 1")
        return TypeRule(
            strong=self.patterns("types.toml", f"{type_}.strong"),
            weak=self.patterns("types.toml", f"{type_}.weak"),
            veto=self.patterns("types.toml", f"{type_}.veto"),
            min_weak=min_weak,
            excluded_by=excluded_by,
            topic=self.patterns("types.toml", f"{type_}.topic", default=[]),
        )

    def direction(self, type_: str) -> DirectionRule:
        directions = ("positive", "negative", "neutral")
        self.table("direction.toml", type_)
        order = self.strings("direction.toml", f"{type_}.order", ["negative", "positive", "neutral"])
        if sorted(order) != sorted(directions):
            raise self.fail("direction.toml", f"{type_}.order", f"must list {directions}")
        return DirectionRule(
            cues=tuple((d, self.patterns("direction.toml", f"{type_}.{d}")) for d in order),
            default_binding=self.choice("direction.toml", f"{type_}.default_binding", directions),
            default_soft=self.choice("direction.toml", f"{type_}.default_soft", directions),
        )


def any_match(patterns: Patterns, text: str) -> bool:
    return any(p.search(text) for p in patterns)
