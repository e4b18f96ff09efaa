"""`pii_redaction` processor: personal data and secrets do not leave the node
(docs/genai.md, "pii_redaction").

For every span (its attributes and its events' attributes), log record (body and attributes)
and resource, each attribute named in `attributes` is redacted in place (content.py: inside
JSON structure, keeping it valid JSON): the findings of the detector (detect.py: presidio's
recognizers, secret detectors, optionally spaCy NER) are replaced, masked or hashed, or the
attribute is dropped, as `operators` says for their entity type.

Fails closed: if redacting a value raises or runs past its time budget (`time_budget` +
`time_budget_per_kib` per KiB, in CPU time of the thread: a loaded machine does not make it
fail), every content attribute of that span (and of its events) or
log record is removed — never passed on unredacted — the span still goes on, and the failure is
counted (selfmetrics.py). Each span and log record gets a summary that holds no value:

    llmtap.redaction.count               int       values redacted (added to on a second pass)
    llmtap.redaction.entity_types        string[]  their entity types, sorted
    llmtap.redaction.dropped_attributes  string[]  attributes removed (drop operator, binary, fail closed)
    llmtap.redaction.error               string    why content was dropped: "time budget exceeded …", "internal error: …"

Cost: the detector's (~3 ms per KiB of PII-dense text without NER, ~35 with), a JSON parse of each JSON value and
a dump of the ones that changed; spans without listed attributes cost one pass over their keys.
The recognizers (and the spaCy model, with ner) load once, when the processor is created.
"""

from __future__ import annotations

import fnmatch
from collections import Counter
from typing import Any

import regex
from google.protobuf.message import Message

from llmtap import attributes
from llmtap.component import Consumer, Factory, Kind, Settings, Signal, Stability
from llmtap.processorhelper import SpanProcessor
from llmtap.processors.pii_redaction.config import Config, OperatorConfig, PatternConfig, RecognizerConfig

__all__ = ["Config", "OperatorConfig", "PatternConfig", "RecognizerConfig", "PiiRedactionProcessor", "factory"]

COUNT = "llmtap.redaction.count"
ENTITY_TYPES = "llmtap.redaction.entity_types"
DROPPED = "llmtap.redaction.dropped_attributes"
ERROR = "llmtap.redaction.error"


class _Failed(Exception):
    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


class PiiRedactionProcessor(SpanProcessor):
    def __init__(self, settings: Settings, config: Config, signal: Signal, next: Consumer):
        super().__init__(settings, config, signal, next)
        # Imported here: presidio and its recognizers load with the first processor, not with the registry.
        from llmtap.processors.pii_redaction.content import ValueRedactor
        from llmtap.processors.pii_redaction.detect import Detector
        from llmtap.processors.pii_redaction.operators import Operators
        from llmtap.processors.pii_redaction.selfmetrics import metrics_for

        self._label = str(self.id)
        self._metrics = metrics_for(settings.telemetry)
        detector = Detector(config)
        self._redactor = ValueRedactor(detector, Operators(config))
        # The one line about the recognizers (presidio's own "Loaded recognizer" lines are silenced).
        self.logger.info("pii_redaction: %d entity types, NER %s", len(detector.entities),
                         f"on ({config.ner_model})" if config.ner else "off")
        self._listed = regex.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in config.attributes) or "(?!)")
        self._budget = float(config.time_budget)
        self._per_char = config.budget_per_kib() / 1024

    def process_traces(self, request: Message) -> None:
        for rs in request.resource_spans:
            self._resource(rs.resource, Signal.TRACES)
            for ss in rs.scope_spans:
                for span in ss.spans:
                    self.process_span(span)

    def process_logs(self, request: Message) -> None:
        for rl in request.resource_logs:
            self._resource(rl.resource, Signal.LOGS)
            for sl in rl.scope_logs:
                for record in sl.log_records:
                    self.process_log_record(record)

    def _is_listed(self, key: str) -> bool:
        return self._listed.fullmatch(key) is not None

    def process_span(self, span, resource=None) -> None:
        """Redact one span in place; never raises."""
        groups = [span.attributes] + [event.attributes for event in span.events]
        self._process(span.attributes, groups, None, Signal.TRACES)

    def process_log_record(self, record) -> None:
        """Redact one log record in place; never raises."""
        body = record.body if self.config.log_bodies and record.HasField("body") else None
        self._process(record.attributes, [record.attributes], body, Signal.LOGS)

    def _process(self, summary_attrs, groups: list, body, signal: Signal) -> None:
        found: Counter = Counter()
        dropped: list[str] = []
        error = None
        try:
            for attrs in groups:
                doomed = [kv for kv in attrs if self._is_listed(kv.key)
                          and not self._redact(kv.key, kv.value, found, dropped)]
                if doomed:
                    ids = {id(kv) for kv in doomed}
                    for i in reversed(range(len(attrs))):
                        if id(attrs[i]) in ids:
                            del attrs[i]
            if body is not None and not self._redact("body", body, found, dropped):
                body.Clear()
        except Exception as e:  # fail closed: the content goes, the item goes on
            reason = e.reason if isinstance(e, _Failed) else "error"
            error = str(e) if isinstance(e, _Failed) else f"internal error: {type(e).__name__}: {e}"
            if not isinstance(e, _Failed):
                self.logger.warning("redaction failed, content dropped: %s", error)
            self._metrics.failed_items.labels(self._label, signal.value, reason).inc()
            found.clear()
            for attrs in groups:
                keys = {kv.key for kv in attrs if self._is_listed(kv.key)}
                dropped.extend(sorted(keys - set(dropped)))
                n = attributes.remove(attrs, keys.__contains__)
                if n:
                    self._metrics.dropped_attributes.labels(self._label, "fail_closed").inc(n)
            if body is not None and body.WhichOneof("value") is not None:
                body.Clear()
                dropped.append("body")
        for entity, n in found.items():
            self._metrics.findings.labels(self._label, entity).inc(n)
        self._summarize(summary_attrs, found, dropped, error)

    def _redact(self, key: str, value, found: Counter, dropped: list[str]) -> bool:
        """Redact one AnyValue in place; False when it is to be removed. Raises _Failed."""
        from llmtap.processors.pii_redaction.content import Undecodable, text_size
        from llmtap.processors.pii_redaction.detect import TimeBudgetExceeded, budget_clock
        from llmtap.processors.pii_redaction.operators import Drop

        python = attributes.to_python(value)
        deadline = budget_clock() + self._budget + self._per_char * text_size(python)
        here: Counter = Counter()
        try:
            redacted = self._redactor.redact(python, key, here, deadline)
        except Drop as e:
            found.update(here)
            found[e.args[0]] += 1
            dropped.append(key)
            self._metrics.dropped_attributes.labels(self._label, "drop_operator").inc()
            return False
        except Undecodable:
            dropped.append(key)
            self._metrics.dropped_attributes.labels(self._label, "binary").inc()
            return False
        except TimeBudgetExceeded as e:
            raise _Failed("time_budget", f"{e} while redacting {key}: content dropped") from None
        if here:
            found.update(here)
            attributes.set_value(value, redacted)
        return True

    def _summarize(self, attrs, found: Counter, dropped: list[str], error: str | None) -> None:
        raw = {kv.key: kv.value for kv in attrs if kv.key in (COUNT, ENTITY_TYPES, DROPPED)}
        # A second pass adds to what the first one counted: redacting twice changes nothing.
        count = attributes.to_python(raw[COUNT]) if COUNT in raw else 0
        types = attributes.to_python(raw[ENTITY_TYPES]) if ENTITY_TYPES in raw else []
        gone = attributes.to_python(raw[DROPPED]) if DROPPED in raw else []
        updates: dict[str, Any] = {
            COUNT: (count if isinstance(count, int) else 0) + sum(found.values()),
            ENTITY_TYPES: sorted(set(types if isinstance(types, list) else []) | set(found)),
        }
        if dropped or gone:
            updates[DROPPED] = sorted(set(gone if isinstance(gone, list) else []) | set(dropped))
        if error:
            updates[ERROR] = error
        attributes.update(attrs, updates)

    def _resource(self, resource, signal: Signal) -> None:
        """Listed resource attributes (process.command_line, …): redacted, or dropped if that fails."""
        if not any(self._is_listed(kv.key) for kv in resource.attributes):
            return
        found: Counter = Counter()
        doomed = set()
        for kv in resource.attributes:
            if self._is_listed(kv.key):
                try:
                    if not self._redact(kv.key, kv.value, found, []):
                        doomed.add(kv.key)
                except Exception as e:
                    self.logger.warning("redaction of resource attribute %s failed, dropped: %s", kv.key, e)
                    self._metrics.failed_items.labels(self._label, signal.value,
                                                      getattr(e, "reason", "error")).inc()
                    self._metrics.dropped_attributes.labels(self._label, "fail_closed").inc()
                    doomed.add(kv.key)
        if doomed:
            attributes.remove(resource.attributes, doomed.__contains__)
        for entity, n in found.items():
            self._metrics.findings.labels(self._label, entity).inc(n)


factory = Factory(
    type="pii_redaction",
    kind=Kind.PROCESSOR,
    config_class=Config,
    create=PiiRedactionProcessor,
    signals=frozenset({Signal.TRACES, Signal.LOGS}),
    stability=Stability.ALPHA,
    description="Redacts personal data and secrets (presidio's recognizers, secret detectors, optional NER) "
                "in content attributes and log bodies; fails closed",
)
