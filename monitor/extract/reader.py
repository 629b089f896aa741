"""The trained reader: type (multi-label), commitment and direction of a sentence, learnt from the corpus.

Why a model: hand-written cues reach only the wording they were written against (type F1 0.96 on the
dev set they were tuned to, 0.64 on companies they never saw). Linear models over word and character
n-grams, with the rule cues as extra features, learn wording from 166 companies' sentences and are
fast enough to read every sentence of every document (no transformer forward pass on the hot path).

- type: one logistic regression per type (one-vs-rest), each with its own decision threshold (set from
  out-of-fold probabilities by company, kept in ``Settings``), and only on a word of the type's subject;
- commitment and direction: one model each over (sentence, type) pairs, the features copied into a
  type-specific block as well ("frustratingly easy" feature augmentation), so that what marks a soft
  financing and a soft lease can differ while sharing what they have in common;
- the gate: a soft deal read as signed is the costliest error, so the model's "binding" must pass the
  rules' commitment cues (no negation, no conditional override, no LOI/MOU/term sheet that a definitive
  agreement has not replaced, and a binding cue or no hedge). Where the two disagree, it is soft.

Numbers are read to shapes before vectorising ("$1.5 billion" → "$0 billion"), so that the model learns
"$N billion of notes" rather than one deal's size. Fields stay with the precise parsers (fields.py).
"""

from __future__ import annotations

import hashlib
import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import joblib
import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from monitor.errors import ConfigError
from monitor.extract import fields
from monitor.extract.corpus import DIRECTIONS, Example
from monitor.extract.model import TYPES
from monitor.extract.rules import Rules, any_match

FORMAT = 1  # bump when the artefact's layout changes
_DIGITS = re.compile(r"\d+(?:[.,]\d+)*")


def normalise(sentence: str) -> str:
    """Lower case, every number read as 0: the model learns shapes of figures, not one deal's figures."""
    return _DIGITS.sub("0", sentence.lower()).replace("’", "'").replace("“", '"').replace("”", '"')


@dataclass(frozen=True)
class Settings:
    """Hyper-parameters, chosen by grouped cross-validation (bench/accuracy.py)."""

    word_ngrams: tuple[int, int] = (1, 3)
    char_ngrams: tuple[int, int] = (3, 5)
    min_df: int = 2
    c_type: float = 8.0
    c_commitment: float = 4.0
    c_direction: float = 4.0
    seed: int = 13
    # the double-labelled, adjudicated dev set weighs more than single-pass labels: its labels are the
    # most reliable (grouped CV: its own F1 0.816 → 0.828 at weight 3, the rest unchanged)
    adjudicated_group: str = "dev"
    adjudicated_weight: float = 3.0
    # per-type decision thresholds on the type models' probabilities (class weights are balanced, so
    # 0.5 favours precision); set from out-of-fold probabilities by company, rounded to 0.05
    thresholds: tuple[tuple[str, float], ...] = (
        ("contracted_compute", 0.4), ("power", 0.4), ("partnership", 0.3), ("financing", 0.3),
        ("mining", 0.45), ("btc_exposure", 0.35),
    )


class CueFeatures:
    """The rules' cues as a small dense block: which type cues fire, binding/soft/negation, figures."""

    def __init__(self, rules: Rules) -> None:
        self.rules = rules
        # per type, the cue lists each feature reads, joined once rather than for every sentence
        self._per_type = [
            (rules.types[t].strong, rules.types[t].weak, rules.types[t].veto,
             rules.binding["all"] + rules.binding[t], rules.soft["all"] + rules.soft[t],
             rules.soft_override["all"] + rules.soft_override[t], dict(rules.direction[t].cues))
            for t in TYPES
        ]

    def check(self, model: "ReaderModel") -> None:
        """A model reads the cue block it was fitted on; rules with other kinds of cues need a retrain."""
        if model.cue_names != self.names():
            raise ConfigError("the rules' cue features differ from those the reader model was trained on; "
                              "rebuild it with `monitor train`")

    def names(self) -> list[str]:
        names = []
        for t in TYPES:
            names += [f"{t}:strong", f"{t}:weak", f"{t}:veto", f"{t}:binding", f"{t}:soft", f"{t}:override"]
            names += [f"{t}:dir:{d}" for d in DIRECTIONS]
        return names + ["negation", "soft_instrument", "confirmation", "setback", "mw", "usd", "term",
                        "percent_down", "percent_up"]

    def row(self, sentence: str) -> list[float]:
        rules = self.rules
        values: list[float] = []
        for strong, weak, veto, binding, soft, override, cues in self._per_type:
            values += [
                float(any_match(strong, sentence)),
                min(sum(1 for p in weak if p.search(sentence)), 3) / 3,
                float(any_match(veto, sentence)),
                float(any_match(binding, sentence)),
                float(any_match(soft, sentence)),
                float(any_match(override, sentence)),
            ]
            values += [float(any_match(cues[d], sentence)) for d in DIRECTIONS]
        percents = re.findall(r"(?<![\w.])(-?)\s?\d+(?:\.\d+)?\s?%", sentence)
        values += [
            float(any_match(rules.negation, sentence)),
            float(any_match(rules.soft_instrument, sentence)),
            float(any_match(rules.confirmation, sentence)),
            float(any_match(rules.setback, sentence)),
            float(bool(fields.megawatts(sentence, rules))),
            float(bool(fields.money(sentence, rules))),
            float(bool(fields.term_years(sentence, rules))),
            float(any(sign == "-" for sign in percents)),
            float(any(sign == "" for sign in percents)),
        ]
        return values

    def matrix(self, sentences: Sequence[str]) -> sparse.csr_matrix:
        return sparse.csr_matrix(np.array([self.row(s) for s in sentences], dtype=np.float64))


@dataclass
class Reading:
    type: str
    commitment: str
    direction: str


@dataclass
class ReaderModel:
    """Vectorisers and classifiers, fitted; pickled as one artefact under models/."""

    settings: Settings
    words: TfidfVectorizer
    chars: TfidfVectorizer | None
    type_models: dict[str, LogisticRegression]
    thresholds: dict[str, float]
    commitment_model: LogisticRegression
    direction_model: LogisticRegression
    cue_names: list[str]  # the rules' cue features it was fitted on, in order
    meta: dict[str, Any] = field(default_factory=dict)

    def features(self, sentences: Sequence[str], cues: CueFeatures) -> sparse.csr_matrix:
        normalised = [normalise(s) for s in sentences]
        blocks = [self.words.transform(normalised)]
        if self.chars is not None:
            blocks.append(self.chars.transform(normalised))
        return sparse.hstack(blocks + [cues.matrix(sentences)]).tocsr()

    def type_probabilities(self, x: sparse.csr_matrix) -> dict[str, np.ndarray]:
        return {t: model.predict_proba(x)[:, 1] for t, model in self.type_models.items()}

    def read(self, sentences: Sequence[str], cues: CueFeatures) -> list[list[Reading]]:
        """Every sentence's readings (at most one per type), with the binding gate applied."""
        if not sentences:
            return []
        x = self.features(sentences, cues)
        probabilities = self.type_probabilities(x)
        pairs = []
        for i, sentence in enumerate(sentences):
            found = [t for t in TYPES if probabilities[t][i] >= self.thresholds[t] and on_topic(sentence, t, cues.rules)]
            pairs += [(i, t) for t in found if not set(cues.rules.types[t].excluded_by) & set(found)]
        readings: list[list[Reading]] = [[] for _ in sentences]
        if not pairs:
            return readings
        rows = x[[i for i, _ in pairs]]
        types = [t for _, t in pairs]
        pairs_x = augment(rows, types)
        commitments = self.commitment_model.predict(pairs_x)
        directions = self.direction_model.predict(pairs_x)
        for (i, type_), commitment, direction in zip(pairs, commitments, directions):
            readings[i].append(settle(sentences[i], type_, str(commitment), str(direction), cues.rules))
        return readings

    def dumps(self) -> bytes:
        buffer = io.BytesIO()
        joblib.dump(self, buffer, compress=3)
        return buffer.getvalue()


def on_topic(sentence: str, type_: str, rules: Rules) -> bool:
    """The sentence has a word of the type's subject (rules/types.toml ``topic``); no list, no limit.

    Why: a linear model learns the shape of a disclosure ("record revenue in Q1", "entered into an
    agreement") as much as its subject, and would type an earnings line of a software company as
    AI/HPC revenue. The subject words come from the GUIDE's definitions, not from any one sentence.
    """
    topic = rules.types[type_].topic
    return not topic or any_match(topic, sentence)


def settle(sentence: str, type_: str, commitment: str, direction: str, rules: Rules) -> Reading:
    """The model's reading with the precise overrides: a negated commitment ("did not enter into",
    "elected not to") is no contract (soft) and a step back (negative); a setback (delay, termination,
    default) is negative; a mining figure's direction is its stated trend, if one-way; binding must pass
    the gate."""
    if any_match(rules.negation, sentence):
        return Reading(type_, "soft", "negative")
    if any_match(rules.setback, sentence):
        direction = "negative"
    elif type_ in rules.trend_types:
        direction = trend(sentence, rules) or direction
    return Reading(type_, gate(sentence, type_, commitment, rules), direction)


def trend(sentence: str, rules: Rules) -> str:
    """"down 15%" alone is a decline, "rose 20%" alone growth; both or neither say nothing."""
    down, up = any_match(rules.trend_down, sentence), any_match(rules.trend_up, sentence)
    return "negative" if down and not up else "positive" if up and not down else ""


def gate(sentence: str, type_: str, commitment: str, rules: Rules) -> str:
    """The model's "binding" stands only when the rules do not object: no negation, conditional override
    or soft instrument (LOI, MOU, term sheet) that no definitive agreement has replaced, and either a
    binding cue backs it or no hedge (expects, plans, negotiating, contingent …) is present.

    Why: calling optionality cash flow is the costliest error this tool can make, and a linear model
    trained on ~4,000 sentences will sometimes do it for wording it has not seen. A precise cue is the
    second opinion; a disagreement costs a missed "binding" (recoverable: it shows as soft), never a
    page for an LOI.
    """
    if commitment != "binding":
        return commitment
    if any_match(rules.negation + rules.soft_override["all"] + rules.soft_override[type_], sentence):
        return "soft"
    if any_match(rules.soft_instrument, sentence) and not any_match(rules.confirmation, sentence):
        return "soft"
    if any_match(rules.binding["all"] + rules.binding[type_], sentence):
        return "binding"
    return "soft" if any_match(rules.soft["all"] + rules.soft[type_], sentence) else "binding"


def augment(rows: sparse.csr_matrix, types: Sequence[str]) -> sparse.csr_matrix:
    """[shared features | features in this type's block | type indicator] for (sentence, type) pairs."""
    blocks = []
    for type_ in TYPES:
        mask = sparse.diags(np.array([1.0 if t == type_ else 0.0 for t in types]))
        blocks.append(mask @ rows)
    indicator = sparse.csr_matrix(np.array([[1.0 if t == u else 0.0 for u in TYPES] for t in types]))
    return sparse.hstack([rows] + blocks + [indicator]).tocsr()


def fit(examples: Sequence[Example], rules: Rules, settings: Settings = Settings()) -> ReaderModel:
    """Fit every part on the examples; deterministic for fixed settings (liblinear, a fixed seed)."""
    sentences = [e.text for e in examples]
    normalised = [normalise(s) for s in sentences]
    words = TfidfVectorizer(ngram_range=settings.word_ngrams, min_df=settings.min_df, sublinear_tf=True,
                            token_pattern=r"(?u)\b\w+\b|\$|%")
    blocks = [words.fit_transform(normalised)]
    chars = None
    if settings.char_ngrams[1]:
        chars = TfidfVectorizer(analyzer="char_wb", ngram_range=settings.char_ngrams, min_df=settings.min_df,
                                sublinear_tf=True, max_features=60_000)
        blocks.append(chars.fit_transform(normalised))
    cues = CueFeatures(rules)
    x = sparse.hstack(blocks + [cues.matrix(sentences)]).tocsr()
    weights = np.array([settings.adjudicated_weight if e.group == settings.adjudicated_group else 1.0
                        for e in examples])
    type_models = {}
    for type_ in TYPES:
        y = np.array([type_ in e.by_type() for e in examples])
        type_models[type_] = _logistic(settings.c_type, settings.seed, balanced=True).fit(x, y, sample_weight=weights)
    pair_rows, pair_types, commitments, directions = [], [], [], []
    for i, example in enumerate(examples):
        for type_, disclosure in example.by_type().items():
            pair_rows.append(i)
            pair_types.append(type_)
            commitments.append(disclosure["commitment"])
            directions.append(disclosure["direction"])
    pairs = augment(x[pair_rows], pair_types)
    pair_weights = weights[pair_rows]
    commitment_model = _logistic(settings.c_commitment, settings.seed).fit(pairs, commitments,
                                                                          sample_weight=pair_weights)
    direction_model = _logistic(settings.c_direction, settings.seed, classes=3).fit(pairs, directions,
                                                                                   sample_weight=pair_weights)
    return ReaderModel(settings, words, chars, type_models, dict(settings.thresholds), commitment_model,
                       direction_model, cues.names())


def _logistic(c: float, seed: int, balanced: bool = False, classes: int = 2) -> LogisticRegression:
    solver = "liblinear" if classes == 2 else "lbfgs"  # liblinear is binary only (one-vs-rest is deprecated)
    return LogisticRegression(C=c, solver=solver, random_state=seed, max_iter=3000,
                              class_weight="balanced" if balanced else None)


def load_model(path: Path) -> ReaderModel:
    try:
        model = joblib.load(path)
    except FileNotFoundError:
        raise ConfigError(f"{path}: reader model not found; build it with `monitor train`") from None
    except Exception as exc:  # a truncated or foreign file: joblib raises many kinds
        raise ConfigError(f"{path}: not a reader model ({type(exc).__name__}: {exc})") from None
    if not isinstance(model, ReaderModel) or model.meta.get("format") != FORMAT:
        raise ConfigError(f"{path}: reader model of another format; rebuild it with `monitor train`")
    return model


def file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


