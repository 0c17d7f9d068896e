"""Emotion jobs: answered from the result cache where possible, the rest by the classifier.

Interactive jobs arrive on the model queue (`cpu` or `gpu`) in messages of one or more job ids
(the jobs an API process committed together share one, ``tasks.enqueue``); the worker gathers
messages into batches (``workers.batching``) and the job lifecycle (``tasks.lifecycle``) hands
a batch's claimed jobs to :func:`analyze` at once. Bulk chunks (``tasks.bulk``) go through the
same handler.

Each text is cut into parts (``workers.emotion.documents``): its windows, or its sentences with
``granularity: sentence``. The parts of every job of the batch that miss the cache run through
the model together, in length-sorted forward passes; a part that makes the model fail fails
its own job only. Each job's result is then assembled from its parts' probabilities and shaped
by its options (``workers.emotion.results``).
"""
from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from db.jobs import ClaimedJob, JobOutcome
from db.score_only import keeps_input
from tasks.lifecycle import BatchReport, JobFailure, failure_of
from tasks.models import emotion_model, emotion_model_key
from tasks.services import Services
from workers.batching import forward_passes
from workers.emotion.documents import Part, halves, sentences, window_chars, windows
from workers.emotion.results import Controls, shaped, thresholds_of, weighted_probabilities
from workers.result_cache import result_cache

log = logging.getLogger(__name__)


def analyze(services: Services, jobs: list[ClaimedJob], report: BatchReport) -> list[JobOutcome | JobFailure]:
    """Each job on the emotion model its ``options.model`` names: a worker consuming the queues of
    several models may batch their messages together, so the jobs are scored model by model."""
    by_model: dict[str, list[int]] = {}
    for index, job in enumerate(jobs):
        by_model.setdefault(emotion_model_key(job.options), []).append(index)
    outcomes: list[JobOutcome | JobFailure | None] = [None] * len(jobs)
    for key, indices in by_model.items():
        for index, outcome in zip(indices, analyze_on(services, key, [jobs[i] for i in indices], report)):
            outcomes[index] = outcome
    return outcomes


def analyze_on(services: Services, key: str, jobs: list[ClaimedJob], report: BatchReport
               ) -> list[JobOutcome | JobFailure]:
    settings = services.settings
    try:
        classifier = emotion_model(settings, key)
    except JobFailure as failure:
        return [failure] * len(jobs)
    plans = [parts_of(job.input["text"], job.options, classifier.max_length) for job in jobs]
    cache = result_cache(settings, classifier)
    scorer = Scorer(classifier, report, settings.batch_max_tokens, cache)
    started = time.perf_counter()
    scored = scorer.score([part.text for parts in plans for part in parts],
                          keep_truncated={job.input["text"] for job in jobs if job.options.get("truncate")},
                          owners=owners_of(jobs, plans))
    elapsed = time.perf_counter() - started
    cache.index_jobs({job.id: [(job.tenant_id, text) for text in scorer.texts_of(part.text for part in parts)]
                      for job, parts in zip(jobs, plans) if keeps_input(job.options)})
    outcomes: list[JobOutcome | JobFailure] = []
    for job, parts in zip(jobs, plans):
        try:
            result, recorded = assembled(classifier, parts, scored, job.options)
        except JobFailure as failure:
            outcomes.append(failure)
            continue
        result["cached"] = keeps_input(job.options) and not any(
            (job.tenant_id, part.text) in scorer.missed for part in parts)
        outcomes.append(JobOutcome(result, classifier.name, classifier.version, emotion=recorded))
    log.info("emotion batch on %s (model %s): %d jobs, %d parts, %d computed, passes %s, %.0f ms", report.queue,
             key, len(jobs), sum(map(len, plans)), len(scorer.computed), report.passes[-8:], elapsed * 1000)
    return outcomes


def owners_of(jobs: Sequence[ClaimedJob], plans: Sequence[Sequence[Part]]) -> dict[str, set]:
    """The tenants that asked for each part's text: the cache answers each tenant from its own entries.

    A score-only job (``store_input: false``) owns none of its texts: they are neither looked up
    nor stored, so the cache never holds a key derived from them.
    """
    owners: dict[str, set] = defaultdict(set)
    for job, parts in zip(jobs, plans):
        if not keeps_input(job.options):
            continue
        for part in parts:
            owners[part.text].add(job.tenant_id)
    return owners


def parts_of(text: str, options: Mapping, max_length: int) -> list[Part]:
    """What of ``text`` the model scores: the whole text (``truncate``), its sentences, or its windows."""
    if options.get("truncate"):
        return [Part(text, 0, len(text))]
    if options.get("granularity") == "sentence":
        return sentences(text, window_chars(max_length))
    return windows(text, window_chars(max_length))


#: Options that change what a result shows, not what the model found.
DISPLAY_OPTIONS = ("top_k", "threshold", "labels")


class Emotion(NamedTuple):
    """An emotion result as the caller asked to see it, and the analysis stored for analytics.

    Score rows and rollups (``db.jobs.complete_jobs``) always hold every label under the tuned
    thresholds, so one job's ``options.labels`` or ``options.threshold`` never skews a subject's
    timeline; ``recorded`` is ``shown`` itself when no display option was given.
    """

    shown: dict
    recorded: dict


def assembled(classifier, parts: Sequence[Part], scored: Mapping[str, dict | JobFailure], options: Mapping,
              sentence_key: str | None = "sentences") -> Emotion:
    shown = assemble(classifier, parts, scored, options, sentence_key)
    if all(options.get(name) is None for name in DISPLAY_OPTIONS):
        return Emotion(shown, shown)
    canonical = {name: value for name, value in options.items() if name not in DISPLAY_OPTIONS}
    return Emotion(shown, assemble(classifier, parts, scored, {**canonical, "granularity": "document"}))


def assemble(classifier, parts: Sequence[Part], scored: Mapping[str, dict | JobFailure], options: Mapping,
             sentence_key: str | None = "sentences") -> dict:
    """A job's result from its parts' scores; raises the JobFailure of a part that failed.

    ``granularity: sentence`` adds each part's own result under ``sentence_key`` with its offsets
    (``None``: the caller lists the parts itself, as a transcript's segments).
    """
    answers = [scored[part.text] for part in parts]
    failure = next((answer for answer in answers if isinstance(answer, JobFailure)), None)
    if failure is not None:
        raise failure
    controls = Controls.from_options(options)
    thresholds = thresholds_of(classifier)
    try:
        if len(parts) == 1:
            probabilities = answers[0]["probabilities"]
        else:
            probabilities = weighted_probabilities([(p.weight, a["probabilities"]) for p, a in zip(parts, answers)])
        result = shaped(probabilities, thresholds, controls, classifier.multi_label,
                        truncated=any(answer["truncated"] for answer in answers))
        if options.get("granularity") == "sentence":
            result["granularity"] = "sentence"
        if options.get("granularity") == "sentence" and sentence_key:
            result[sentence_key] = [
                {"start": part.start, "end": part.end, "text": part.text,
                 **shaped(answer["probabilities"], thresholds, controls, classifier.multi_label, answer["truncated"])}
                for part, answer in zip(parts, answers)]
        elif options.get("granularity") != "sentence":
            result["windows"] = len(parts)
    except ValueError as error:
        raise JobFailure("invalid_options", str(error)) from None
    return result


@dataclass
class Scorer:
    """Scores texts in length-sorted forward passes; a text the model truncated is scored in halves.

    ``score`` answers each distinct text once; with a cache, each tenant that asked for a text
    (``owners``) is answered from its own entry, and the model runs on a text some owner missed.
    ``computed`` holds the texts the model ran on, ``missed`` the (tenant, text) lookups the
    cache did not answer, ``pieces`` the halves each truncated text was scored in.
    """

    classifier: object
    report: BatchReport
    max_tokens: int = 0
    cache: object = None
    computed: set[str] = field(default_factory=set)
    missed: set[tuple] = field(default_factory=set)
    pieces: dict[str, list[str]] = field(default_factory=dict)

    def score(self, texts: Sequence[str], keep_truncated: frozenset[str] | set[str] = frozenset(),
              owners: Mapping[str, Collection] | None = None) -> dict[str, dict | JobFailure]:
        """A raw model result (``probabilities``, ``truncated``) or a JobFailure per distinct text."""
        owners = owners or {}
        unique = list(dict.fromkeys(texts))
        answers = dict(zip(unique, self._lookup(unique, owners)))
        cut = {text: halves(Part(text, 0, len(text))) for text, answer in answers.items()
               if isinstance(answer, dict) and answer["truncated"] and text not in keep_truncated}
        cut = {text: pieces for text, pieces in cut.items() if pieces}
        if cut:
            piece_owners: dict[str, set] = defaultdict(set)
            for text, parts in cut.items():
                self.pieces[text] = [piece.text for piece in parts]
                for piece in parts:
                    piece_owners[piece.text].update(owners.get(text, ()))
            pieces = self.score([piece.text for parts in cut.values() for piece in parts], owners=piece_owners)
            for text, parts in cut.items():
                answers[text] = merged(parts, pieces)
        return answers

    def texts_of(self, texts: Iterable[str]) -> set[str]:
        """``texts`` and, for each one scored in halves, the halves (and theirs)."""
        found: set[str] = set()
        waiting = list(texts)
        while waiting:
            text = waiting.pop()
            if text not in found:
                found.add(text)
                waiting.extend(self.pieces.get(text, ()))
        return found

    def _lookup(self, texts: list[str], owners: Mapping[str, Collection]) -> list[dict | JobFailure]:
        lookups = [(owner, text) for text in texts for owner in owners.get(text, ())]
        hits = dict(zip(lookups, self.cache.get_many(lookups))) if self.cache is not None else {}
        missed = [lookup for lookup in lookups if hits.get(lookup) is None]
        self.missed.update(missed)
        found = {text: hit for (_, text), hit in hits.items() if hit is not None}
        misses = [text for text in texts
                  if text not in found or any(hits.get((owner, text)) is None for owner in owners.get(text, ()))]
        self.report.cache_hits += len(texts) - len(misses)
        self.report.cache_misses += len(misses)
        started = time.perf_counter()
        fresh = dict(zip(misses, infer(self.classifier, misses, self.report.max_size, self.max_tokens, self.report)))
        self.report.inference_s += time.perf_counter() - started
        self.computed.update(misses)
        if self.cache is not None:
            good = [lookup for lookup in missed if isinstance(fresh.get(lookup[1]), dict)]
            self.cache.put_many(good, [fresh[text] for _, text in good])
        return [fresh[text] if text in fresh else found[text] for text in texts]


def merged(parts: Sequence[Part], scored: Mapping[str, dict | JobFailure]) -> dict | JobFailure:
    """One raw result for a text scored in ``parts`` (the length-weighted mean of theirs)."""
    answers = [scored[part.text] for part in parts]
    failure = next((answer for answer in answers if isinstance(answer, JobFailure)), None)
    if failure is not None:
        return failure
    return {"probabilities": weighted_probabilities([(p.weight, a["probabilities"]) for p, a in zip(parts, answers)]),
            "truncated": any(answer["truncated"] for answer in answers)}


def emotion_of(classifier, text: str, options: Mapping, max_size: int) -> Emotion:
    """One text's emotion result outside a batch (analyze and transcribe jobs), by the same rules."""
    parts = parts_of(text, options, classifier.max_length)
    scorer = Scorer(classifier, BatchReport("", max_size=max_size))
    keep = {text} if options.get("truncate") else set()
    return assembled(classifier, parts, scorer.score([part.text for part in parts], keep), options)


def infer(classifier, texts: list[str], max_size: int, max_tokens: int, report: BatchReport
          ) -> list[dict | JobFailure]:
    """A result or a JobFailure per text. A call that raises is retried text by text, so one bad text fails alone.

    Without a token budget one ``predict`` call takes every text: it sorts them by their exact
    token count and cuts passes of at most ``max_size`` where padding would cost more than
    another pass (``workers.emotion.passes``).
    """
    outcomes: list[dict | JobFailure | None] = [None] * len(texts)
    if max_tokens > 0:
        groups = forward_passes(texts, max_size, max_tokens, classifier.max_length)
    else:
        groups = [list(range(len(texts)))] if texts else []
    for indices in groups:
        batch = [texts[i] for i in indices]
        try:
            results = classifier.predict(batch, batch_size=max_size)
            report.passes.extend(classifier.last_pass_sizes)
        except Exception as error:  # noqa: BLE001 - isolate the text that fails
            results = [failure_of(error)] if len(batch) == 1 else [predict_one(classifier, text) for text in batch]
            report.passes.extend([1] * len(batch))
        for index, result in zip(indices, results):
            outcomes[index] = result
    return outcomes


def predict_one(classifier, text: str) -> dict | JobFailure:
    try:
        return classifier.predict([text], batch_size=1)[0]
    except Exception as error:  # noqa: BLE001 - reported on the job
        return failure_of(error)
