"""The labeled PII corpus of the pii_redaction evaluation (tests/test_pii_accuracy.py, bench/pii_redaction.py).

corpus.jsonl   674 records (prompt / completion / tool_output) with their PII and secret spans;
               committed, made by generate.py from SEED (corpus.meta.json: the Faker and
               phonenumbers versions it was made with)
generate.py    renders templates.py (filled from values.py) and hard_cases.py into corpus.jsonl
values.py      fake values that pass their types' validators; the entity type names
templates.py   what agents see: chat turns, pasted mail, code, `env`, logs, JSON tool results
hard_cases.py  look-alikes (decoys) and real values in awkward places, written by hand
scoring.py     the matching rule, the detectors compared (ours, stock presidio), the table
"""
