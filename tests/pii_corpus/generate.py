"""Writes the labeled PII corpus, tests/pii_corpus/corpus.jsonl, deterministically from SEED.

    .venv/bin/python tests/pii_corpus/generate.py            # rewrite corpus.jsonl
    .venv/bin/python tests/pii_corpus/generate.py --check    # exit 1 if the file differs from a fresh run

Each line: {"id", "kind": prompt|completion|tool_output, "source": "template:NAME" | "hard:NAME",
"text", "spans": [{"start", "end", "entity_type"}], "decoys": [{"start", "end", "looks_like"}]} with
spans sorted and non-overlapping, `text[start:end]` the sensitive value; decoys are look-alikes
that are not sensitive (hard cases only). Records come from the templates (templates.py) filled with
fresh values (values.py) plus the hand-written hard cases (hard_cases.py), which are all kept.

Markup. Templates and hard cases are text with two kinds of holes:
  «KEY»            a value drawn for KEY (see `_KINDS`); an upper-case KEY is labeled with its
                   entity type, a lower-case one is unlabeled filler (uuids, hashes, user names).
                   KEY#2, KEY#3 are other values of the same kind; the same KEY within one record
                   is the same value (so a name and the e-mail made from it agree); KEY* is a fresh
                   value at each use. «KEY|json» inserts the value escaped for a JSON string.
  [[TYPE:value]]   a literal labeled value, for hand-written text.
  {{!TYPE:value}}  a literal decoy: looks like TYPE, is not one (hard cases).
Rendering turns every «KEY» into [[TYPE:value]] (or plain text), then one parser strips the
brackets and records the spans.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pii_corpus import hard_cases, templates, values as v  # noqa: E402

SEED = 67
RECORDS_FROM_TEMPLATES = 640
CORPUS = Path(__file__).with_name("corpus.jsonl")
# The versions the committed file was made with: Faker's word lists and phonenumbers' metadata
# change between releases, so only the same versions reproduce it byte for byte.
META = Path(__file__).with_name("corpus.meta.json")

_HOLE = re.compile(r"«([A-Za-z0-9_]+)(?:#(\d+))?(\*)?(\|json)?»")
_MARK = re.compile(r"\[\[([A-Z0-9_]+):(.*?)\]\]|\{\{!([A-Z0-9_]+):(.*?)\}\}", re.S)


class Record:
    """One record being rendered: draws values, remembers the ones that must repeat."""

    def __init__(self, draw: v.Values):
        self.draw = draw
        self.rng = draw.rng
        self._cache: dict[str, str] = {}

    def person(self, index: str = "") -> tuple[str, str]:
        key = "person" + index
        if key not in self._cache:
            self._cache[key] = "\t".join(self.draw.person())
        first, last = self._cache[key].split("\t")
        return first, last

    def value(self, key: str, index: str = "", fresh: bool = False) -> tuple[str | None, str]:
        """(entity type or None, value) for one hole."""
        entity_type, make = _KINDS[key]
        if fresh:
            return entity_type, make(self, index).strip()
        name = key + index
        if name not in self._cache:
            self._cache[name] = make(self, index).strip()   # a few Faker cities end in a space
        return entity_type, self._cache[name]

    def hole(self, key: str, index: str = "", fresh: bool = False, as_json: bool = False) -> str:
        entity_type, value = self.value(key, index, fresh)
        if as_json:
            value = json.dumps(value)[1:-1]
        return f"[[{entity_type}:{value}]]" if entity_type else value

    def render(self, template: str) -> str:
        return _HOLE.sub(lambda m: self.hole(m[1], m[2] or "", bool(m[3]), bool(m[4])), template)

    def pick(self, seq):
        return self.rng.choice(seq)


def _full(r: Record, i: str) -> str:
    return " ".join(r.person(i))


def _user(r: Record, i: str) -> str:
    first, last = r.person(i)
    raw = (first[0] + last).lower()
    return "".join(c for c in raw if c.isascii() and c.isalnum()) or "deploy"


# KEY -> (entity type or None for filler, draw(record, index)).
_KINDS = {
    "PERSON": (v.PERSON, _full),
    "FIRST": (v.PERSON, lambda r, i: r.person(i)[0]),
    "LAST": (v.PERSON, lambda r, i: r.person(i)[1]),
    "EMAIL": (v.EMAIL_ADDRESS, lambda r, i: r.draw.email(*r.person(i))),
    "PHONE": (v.PHONE_NUMBER, lambda r, i: r.draw.phone()),
    "CARD": (v.CREDIT_CARD, lambda r, i: r.draw.credit_card()),
    "CARD_DIGITS": (v.CREDIT_CARD, lambda r, i: r.draw.credit_card(separator="")),
    "IBAN": (v.IBAN_CODE, lambda r, i: r.draw.iban()),
    "SSN": (v.US_SSN, lambda r, i: r.draw.ssn()),
    "ITIN": (v.US_ITIN, lambda r, i: r.draw.itin()),
    "PASSPORT": (v.US_PASSPORT, lambda r, i: r.draw.us_passport()),
    "DL": (v.US_DRIVER_LICENSE, lambda r, i: r.draw.driver_license()),
    "DEA": (v.MEDICAL_LICENSE, lambda r, i: r.draw.dea(r.person(i)[1])),
    "NHS": (v.UK_NHS, lambda r, i: r.draw.nhs()),
    "NINO": (v.UK_NINO, lambda r, i: r.draw.nino()),
    "AADHAAR": (v.IN_AADHAAR, lambda r, i: r.draw.aadhaar()),
    "PAN": (v.IN_PAN, lambda r, i: r.draw.pan()),
    "TFN": (v.AU_TFN, lambda r, i: r.draw.tfn()),
    "IP": (v.IP_ADDRESS, lambda r, i: r.draw.ip()),
    "IPV4": (v.IP_ADDRESS, lambda r, i: r.draw.ipv4()),
    "IPV6": (v.IP_ADDRESS, lambda r, i: r.draw.ipv6()),
    "URL": (v.URL, lambda r, i: r.draw.url()),
    "BTC": (v.CRYPTO, lambda r, i: r.draw.bitcoin()),
    "CITY": (v.LOCATION, lambda r, i: r.draw.city()),
    "PLACE": (v.LOCATION, lambda r, i: r.draw.place()),
    "COUNTRY": (v.LOCATION, lambda r, i: r.draw.country()),
    "ADDRESS": (v.LOCATION, lambda r, i: r.draw.street_address()),
    "OPENAI": (v.OPENAI_API_KEY, lambda r, i: r.draw.openai_key()),
    "ANTHROPIC": (v.ANTHROPIC_API_KEY, lambda r, i: r.draw.anthropic_key()),
    "GOOGLE": (v.GOOGLE_API_KEY, lambda r, i: r.draw.google_key()),
    "AWS_ID": (v.AWS_ACCESS_KEY_ID, lambda r, i: r.draw.aws_access_key_id()),
    "AWS_SECRET": (v.AWS_SECRET_ACCESS_KEY, lambda r, i: r.draw.aws_secret()),
    "GITHUB": (v.GITHUB_TOKEN, lambda r, i: r.draw.github_token()),
    "SLACK": (v.SLACK_TOKEN, lambda r, i: r.draw.slack_token()),
    "SLACK_HOOK": (v.SLACK_WEBHOOK_URL, lambda r, i: r.draw.slack_webhook()),
    "HF": (v.HUGGINGFACE_TOKEN, lambda r, i: r.draw.huggingface_token()),
    "GROQ": (v.GROQ_API_KEY, lambda r, i: r.draw.groq_key()),
    "STRIPE": (v.STRIPE_API_KEY, lambda r, i: r.draw.stripe_key()),
    "JWT": (v.JWT, lambda r, i: r.draw.jwt()),
    "PEM": (v.PRIVATE_KEY, lambda r, i: r.draw.private_key()),
    "BEARER": (v.BEARER_TOKEN, lambda r, i: r.draw.bearer()),
    "PASSWORD": (v.PASSWORD, lambda r, i: r.draw.password()),
    # unlabeled filler
    "user": (None, _user),
    "uuid": (None, lambda r, i: r.draw.uuid()),
    "sha": (None, lambda r, i: r.draw.hexstr(40)),
    "shortsha": (None, lambda r, i: r.draw.hexstr(7)),
    "hex": (None, lambda r, i: r.draw.hexstr(32)),
    "digest": (None, lambda r, i: "sha256:" + r.draw.hexstr(64)),
    "int": (None, lambda r, i: str(r.rng.randint(100, 99999))),
    "order": (None, lambda r, i: f"{r.pick('ABCDEFGHJK')}{r.rng.randint(10000, 99999)}-{r.rng.randint(10, 99)}"),
    "amount": (None, lambda r, i: f"{r.rng.randint(5, 4999)}.{r.rng.randint(0, 99):02d}"),
    "lastfour": (None, lambda r, i: f"{r.rng.randint(0, 9999):04d}"),
    "date": (None, lambda r, i: f"2025-{r.rng.randint(1, 12):02d}-{r.rng.randint(1, 28):02d}"),
    "time": (None, lambda r, i: f"{r.rng.randint(0, 23):02d}:{r.rng.randint(0, 59):02d}:{r.rng.randint(0, 59):02d}"),
    "company": (None, lambda r, i: r.draw.faker().company()),
    "dbhost": (None, lambda r, i: r.pick(("db", "postgres", "pg-primary", "mysql-0", "orders-db", "localhost"))
               + (f"-{r.rng.randint(1, 9)}" if r.rng.random() < 0.5 else "")),
    "port": (None, lambda r, i: str(r.pick((5432, 5432, 3306, 6379, 27017, 8080, 443, 9200)))),
    "clientid": (None, lambda r, i: "1" + "".join(str(r.rng.randrange(10)) for _ in range(20))),   # 21 digits: no card
    "pid": (None, lambda r, i: str(r.rng.randint(300, 65000))),
}


def parse_markup(marked: str) -> tuple[str, list[dict], list[dict]]:
    """Plain text, the spans of its [[TYPE:value]] marks and those of its {{!TYPE:value}} decoys."""
    out, spans, decoys, pos, length = [], [], [], 0, 0
    for m in _MARK.finditer(marked):
        out.append(marked[pos:m.start()])
        length += m.start() - pos
        entity_type, value = (m[1], m[2]) if m[1] else (m[3], m[4])
        if entity_type not in v.ALL:
            raise ValueError(f"unknown entity type {entity_type!r} in {marked[:80]!r}")
        if m[1]:
            spans.append({"start": length, "end": length + len(value), "entity_type": entity_type})
        else:
            decoys.append({"start": length, "end": length + len(value), "looks_like": entity_type})
        out.append(value)
        length += len(value)
        pos = m.end()
    out.append(marked[pos:])
    text = "".join(out)
    if "[[" in text.replace("[[[", "") or "«" in text or "\\u00ab" in text or "{{!" in text:
        raise ValueError(f"unparsed markup in {text[:120]!r}")
    return text, spans, decoys


def build(seed: int = SEED) -> list[dict]:
    draw = v.Values(seed)
    records = []
    pool = templates.TEMPLATES
    for n in range(RECORDS_FROM_TEMPLATES):
        template = pool[n % len(pool)]   # every template equally often; values vary
        rec = Record(draw)
        body = template.body(rec) if callable(template.body) else template.body
        text, spans, decoys = parse_markup(rec.render(body))
        records.append({"kind": template.kind, "source": f"template:{template.name}", "text": text, "spans": spans,
                        "decoys": decoys})
    for case in hard_cases.CASES:
        text, spans, decoys = parse_markup(Record(draw).render(case.text))
        records.append({"kind": case.kind, "source": f"hard:{case.name}", "text": text, "spans": spans,
                        "decoys": decoys})
    for i, rec in enumerate(records):
        rec["id"] = i
    return [{k: rec[k] for k in ("id", "kind", "source", "text", "spans", "decoys")} for rec in records]


def dumps(records: list[dict]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


def versions() -> dict:
    from importlib.metadata import version
    return {"faker": version("faker"), "phonenumbers": version("phonenumbers")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the committed file, write nothing")
    args = parser.parse_args()
    fresh = dumps(build())
    if args.check:
        same = CORPUS.exists() and CORPUS.read_text(encoding="utf-8") == fresh
        print("corpus.jsonl is up to date" if same else "corpus.jsonl differs from a fresh run")
        return 0 if same else 1
    CORPUS.write_text(fresh, encoding="utf-8")
    META.write_text(json.dumps({"seed": SEED, **versions()}, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {CORPUS} ({fresh.count(chr(10))} records, {len(fresh.encode())} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
