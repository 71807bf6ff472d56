"""The learning rule of the feedback loop: what users' likes and dislikes say about songs.

Only the exported feedback rows are read (``text, scores, song_id, satisfied, …``): the system never
knows a user's true feeling, only the distribution its model gave the text. From the rows:

* **evidence per song** (``song_evidence``): the sum of the text distributions of the answers that
  liked the song (``likes``) and of those that disliked it (``dislikes``), each song of a
  recommendation counted once with its latest answer.
* **the joint rule** (``joint_vectors``, ``rule="joint"``, the default, chosen by the loop's
  measurement): the texts' and the songs' feelings inferred together from the answers (Dawid and
  Skene 1979), so that a text the model misread is read from its other answers.
* **the Bayes rule** (``bayes_vector``, ``rule="bayes"``): a posterior over
  the song's one true feeling, each answer a likelihood with the answer noise ``noise`` (a like from a
  text read as ``s``: ``(1-ε)·s_c + ε·(1-s_c)``; a dislike: its complement), blended with the lyric
  prior ``p`` as ``(strength·p + n·post) / (strength + n)``. A like from a text the model read as
  disgust-or-anger for a song whose lyrics read anger counts for anger, where the text and the
  song agree; a lone like among dislikes reads as noise.
* **the additive rule** (``posterior_vector``, ``rule="additive"``): the lyrics' vector ``p`` is the
  prior with the weight of ``strength`` answers; likes add their text distribution, dislikes take
  ``against`` × theirs away (never below ``floor`` × the prior), and the result is normalised:
  ``q ∝ max(strength·p + L − against·D, floor·p)``. With no feedback ``q = p`` (every rule).
* **feedback-aware song vectors** (``rule_vectors``): the rule's vector of every song, no sharper
  than its lyric vector (``keep_sharpness``), computed by a job after ingestion and stored with the
  catalog of one model version (``model_export.loop.apply_song_vectors``), never on the request path.
* **lyrics labelled through feedback** (``lyric_examples``): every lyric chunk of a song with enough
  answers becomes a soft training example whose target is the rule's vector for the song computed
  with a weaker prior (``target_strength``), weighted by the evidence ``n / (n + strength)`` (capped
  at ``max_weight``). The model learns the lyrics' register from what users said about them; a
  disliked song is evidence against the feelings of the texts it failed.

* **users' texts labelled through their answers** (``text_examples``, on by default, chosen by the
  loop's measurement): each text with enough answers becomes a soft example whose target is the
  joint rule's posterior of its feeling (the model's reading times the likelihood of its answers),
  so a text the model misread, whose user liked sad songs and not the happy ones, is taught as sad.
  This is the only part of the rule that corrects the model's reading of chat text.

``model_export.feedback.feedback_examples`` applies this to an export for ``train --feedback`` and
the loop alike; the circular rule it replaced (a satisfied text labelled with the model's own
prediction) could only confirm what the model believed.
Pure numpy; torch only where ``model_export.loop`` fine-tunes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from model_export.datasets import Example, soft_example
from moodtune.labels import LABELS, NUM_LABELS


@dataclass(frozen=True)
class LearnConfig:
    """The rule's knobs (``python -m model_export.loop`` flags of the same names)."""

    strength: float = 2.0  # the lyric prior's weight, in answers
    against: float = 0.5  # how much of a dislike's text distribution is taken away
    floor: float = 0.05  # a feeling never falls below this share of its prior mass
    target_strength: float = 0.5  # the prior's weight in the fine-tuning targets
    min_answers: int = 2  # a song needs this many answers before its lyrics become examples
    max_weight: float = 1.0  # the most an example of feedback-labelled lyrics weighs
    rule: str = "joint"  # or "bayes", "additive"; chosen by the loop's measurement (docs/retraining.md)
    noise: float = 0.1  # the answer noise the bayes rule assumes
    need_like: bool = False  # True: a song's lyrics become examples only once a user liked it
    iterations: int = 5  # the joint rule's rounds of inference (texts <-> songs)
    keep_sharpness: bool = True  # served vectors keep their lyric vector's peak (never the targets)
    text_weight: float = 1.0  # users' texts labelled through their answers (0: off; text_examples)


@dataclass
class Evidence:
    """What the answers about one song add up to: summed text distributions, and counts."""

    likes: np.ndarray
    dislikes: np.ndarray
    n_likes: int = 0
    n_dislikes: int = 0
    answers: list[tuple[np.ndarray, bool]] = field(default_factory=list)

    @property
    def answers_count(self) -> int:
        return self.n_likes + self.n_dislikes


def _scores(row: Mapping[str, Any]) -> np.ndarray | None:
    scores = row.get("scores")
    if not isinstance(scores, Mapping):
        return None
    try:
        vector = np.array([float(scores.get(label, 0.0)) for label in LABELS], dtype=np.float64)
    except (TypeError, ValueError):
        return None
    total = vector.sum()
    return vector / total if total > 0 and np.all(vector >= 0) else None


def song_evidence(rows: Iterable[Mapping[str, Any]]) -> dict[str, Evidence]:
    """Per song id, the evidence of the rows (latest answers; rows without scores are skipped)."""
    out: dict[str, Evidence] = {}
    # Summed in an order that depends on the rows' content only (never on random recommendation ids).
    for row in sorted(
        rows,
        key=lambda r: json.dumps(
            [r.get("song_id"), r.get("satisfied"), r.get("scores")], sort_keys=True, default=str
        ),
    ):
        vector = _scores(row)
        satisfied = row.get("satisfied")
        if vector is None or not isinstance(satisfied, bool) or not row.get("song_id"):
            continue
        ev = out.setdefault(str(row["song_id"]), Evidence(np.zeros(NUM_LABELS), np.zeros(NUM_LABELS)))
        ev.answers.append((vector, satisfied))
        if satisfied:
            ev.likes += vector
            ev.n_likes += 1
        else:
            ev.dislikes += vector
            ev.n_dislikes += 1
    return out


def posterior_vector(
    prior: Sequence[float] | np.ndarray,
    evidence: Evidence | None,
    strength: float,
    against: float,
    floor: float,
) -> np.ndarray:
    """The song's served vector: its lyric prior moved by the evidence (module docstring)."""
    p = np.asarray(prior, dtype=np.float64)
    p = p / p.sum() if p.sum() > 0 else np.full(NUM_LABELS, 1 / NUM_LABELS)
    if evidence is None or evidence.answers_count == 0:
        return p.astype(np.float32)
    mass = strength * p + evidence.likes - against * evidence.dislikes
    mass = np.maximum(mass, floor * strength * p + 1e-9)
    return (mass / mass.sum()).astype(np.float32)


def bayes_vector(
    prior: Sequence[float] | np.ndarray, evidence: Evidence | None, strength: float, noise: float
) -> np.ndarray:
    """The noise-aware alternative: a posterior over the song's one true feeling ``c``, each answer a
    likelihood (a like: ``(1-ε)·s_c + ε·(1-s_c)``, the text having feeling ``c`` with probability
    ``s_c``; a dislike: its complement), blended with the prior as ``(strength·p + n·post)/(strength+n)``."""
    p = np.asarray(prior, dtype=np.float64)
    p = p / p.sum() if p.sum() > 0 else np.full(NUM_LABELS, 1 / NUM_LABELS)
    if evidence is None or evidence.answers_count == 0:
        return p.astype(np.float32)
    log_post = np.log(np.maximum(p, 1e-6))
    for scores, liked in evidence.answers:
        like = (1 - noise) * scores + noise * (1 - scores)
        log_post += np.log(np.maximum(like if liked else 1 - like, 1e-9))
    post = np.exp(log_post - log_post.max())
    post /= post.sum()
    n = evidence.answers_count
    return ((strength * p + n * post) / (strength + n)).astype(np.float32)


def _softmax_rows(logits: np.ndarray) -> np.ndarray:
    out = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return out / out.sum(axis=-1, keepdims=True)


def _recommendations(rows: Iterable[Mapping[str, Any]], index: Mapping[str, int]) -> list[tuple]:
    """(text scores, song rows, liked, text) per recommendation, in an order that depends on the content
    only; ``text`` is the row's text, or "" where the export left it out."""
    groups: dict[str, tuple[np.ndarray, list[tuple[int, bool]], str]] = {}
    for row in rows:
        vector, satisfied, song = _scores(row), row.get("satisfied"), str(row.get("song_id", ""))
        if vector is None or not isinstance(satisfied, bool) or song not in index:
            continue
        key = str(row.get("recommendation_id") or id(row))
        text = row.get("text")
        groups.setdefault(key, (vector, [], text.strip() if isinstance(text, str) else ""))[1].append(
            (index[song], satisfied)
        )
    out = [
        (
            vector,
            np.array([j for j, _ in sorted(ans)]),
            np.array([liked for _, liked in sorted(ans)]),
            text,
        )
        for vector, ans, text in groups.values()
    ]
    out.sort(key=lambda g: (g[0].round(6).tolist(), g[1].tolist(), g[2].tolist(), g[3]))
    return out


@dataclass
class Joint:
    """What the joint rule inferred: each song's belief over its feeling (``songs`` order, before the
    blend with the prior), its answer count, and per recommendation with a text that text's feeling."""

    songs: list[str]
    prior: np.ndarray
    belief: np.ndarray
    answers: np.ndarray
    texts: list[tuple[str, np.ndarray, int]]  # (text, posterior over its feeling, answers)

    def blended(self, strength: float) -> dict[str, np.ndarray]:
        """Each song's belief blended with its prior, ``(strength·p + n·post) / (strength + n)``."""
        n = self.answers[:, None]
        out = (strength * self.prior + n * self.belief) / (strength + n)
        return {song: out[i].astype(np.float32) for i, song in enumerate(self.songs)}


def joint_inference(
    priors: Mapping[str, np.ndarray], rows: Iterable[Mapping[str, Any]], cfg: LearnConfig
) -> Joint:
    """The texts' and the songs' feelings inferred together from the answers (Dawid and Skene 1979).

    The bayes rule trusts the model's reading of each text; where the model misread it, every answer
    from it points the song the wrong way. Here a recommendation's other answers also say what its text
    felt (liked songs believed sad: a sad text), as in Dawid and Skene's annotator model: for
    ``cfg.iterations`` rounds, each answer's text feeling is the text's reading times the likelihood
    of its other answers under the current song beliefs, and each song's belief is its lyric prior
    times the likelihood of its answers under those text feelings (noise ``cfg.noise``). At the end
    each text's feeling is its reading times the likelihood of *all* its answers."""
    songs = sorted(priors)
    index = {song: i for i, song in enumerate(songs)}
    prior = np.array([np.asarray(priors[s], dtype=np.float64) for s in songs]).reshape(-1, NUM_LABELS)
    prior = prior / np.maximum(prior.sum(axis=1, keepdims=True), 1e-12)
    groups = _recommendations(rows, index)
    answers = np.zeros(len(songs))
    for _, js, _, _ in groups:
        np.add.at(answers, js, 1)
    eps, log_prior, belief = cfg.noise, np.log(np.maximum(prior, 1e-6)), prior.copy()

    def factors(js: np.ndarray, liked: np.ndarray) -> np.ndarray:
        like = (1 - eps) * belief[js] + eps * (1 - belief[js])  # [answers, feeling of the text]
        return np.log(np.maximum(np.where(liked[:, None], like, 1 - like), 1e-9))

    for _ in range(cfg.iterations if groups else 0):
        log_post = log_prior.copy()
        for text, js, liked, _ in groups:
            log_fac = factors(js, liked)
            # each answer's text feeling from the reading and the text's *other* answers
            q = _softmax_rows(np.log(np.maximum(text, 1e-6)) + log_fac.sum(axis=0) - log_fac)
            like_q = (1 - eps) * q + eps * (1 - q)  # [answers, feeling of the song]
            np.add.at(log_post, js, np.log(np.maximum(np.where(liked[:, None], like_q, 1 - like_q), 1e-9)))
        belief = _softmax_rows(log_post)
    texts = [
        (words, _softmax_rows(np.log(np.maximum(text, 1e-6)) + factors(js, liked).sum(axis=0)), len(js))
        for text, js, liked, words in groups
        if words
    ]
    return Joint(songs, prior, belief, answers, texts)


def joint_vectors(
    priors: Mapping[str, np.ndarray], rows: Iterable[Mapping[str, Any]], cfg: LearnConfig, strength: float
) -> dict[str, np.ndarray]:
    """The joint rule's song vectors (``joint_inference``), blended with the prior as the bayes rule
    is, ``(strength·p + n·post) / (strength + n)``; with no answers it is the prior."""
    return joint_inference(priors, rows, cfg).blended(strength)


def text_examples(joint: Joint, cfg: LearnConfig) -> list[Example]:
    """Users' texts labelled through their answers (``joint``: ``joint_inference`` of the rows): a soft
    example per distinct text whose target is the mean, over the recommendations that carried it, of
    the joint rule's posterior of its feeling (the model's reading times the likelihood of the
    answers), weighted by the evidence ``n / (n + strength)`` (capped at ``max_weight``), in text
    order. Where the answers agree with the reading the target only sharpens it; where they contradict
    it (sad songs liked, happy ones not) the target moves to what the user felt: the model's mistakes
    on users' own words are corrected."""
    by_text: dict[str, list[tuple[np.ndarray, int]]] = {}
    for text, posterior, n in joint.texts:
        by_text.setdefault(text, []).append((posterior, n))
    out: list[Example] = []
    for text in sorted(by_text):
        posteriors = by_text[text]
        n = sum(k for _, k in posteriors)
        if n < cfg.min_answers:
            continue
        target = np.mean([p for p, _ in posteriors], axis=0)
        weight = cfg.text_weight * min(cfg.max_weight, n / (n + cfg.strength))
        out.append(soft_example(text, [round(float(t), 4) for t in target], weight))
    return out


def keep_sharpness(
    prior: Sequence[float] | np.ndarray, posterior: Sequence[float] | np.ndarray
) -> np.ndarray:
    """``posterior`` tempered (``q^τ``, renormalised, τ ≤ 1) until its peak is no higher than the
    prior's: the feedback decides which feelings a song carries, its lyrics how sharply. A song's
    vector is compared by cosine with calibrated, soft text readings, so a vector made sharp by many
    answers would rank below broad, unanswered songs for every soft text, whatever its feeling."""
    p, q = np.asarray(prior, dtype=np.float64), np.asarray(posterior, dtype=np.float64)
    p, q = p / p.sum(), np.maximum(q / q.sum(), 1e-12)
    if q.max() <= p.max():
        return q.astype(np.float32)
    lo, hi = 0.0, 1.0  # peak(q^τ) grows with τ: 1/7 at τ = 0, q.max() at τ = 1
    for _ in range(40):
        mid = (lo + hi) / 2
        v = q**mid
        lo, hi = (mid, hi) if v.max() / v.sum() <= p.max() else (lo, mid)
    v = q**lo
    return (v / v.sum()).astype(np.float32)


def rule_vectors(
    priors: Mapping[str, np.ndarray], rows: Sequence[Mapping[str, Any]], cfg: LearnConfig, strength: float
) -> dict[str, np.ndarray]:
    """Every song's vector under the configured rule, its prior worth ``strength`` answers (with
    ``cfg.keep_sharpness``, no sharper than its lyric vector)."""
    if cfg.rule == "joint":
        out = joint_vectors(priors, rows, cfg, strength)
    else:
        evidence = song_evidence(rows)
        out = {s: song_vector(p, evidence.get(s), cfg, strength) for s, p in priors.items()}
    if cfg.keep_sharpness:
        out = {s: keep_sharpness(priors[s], v) for s, v in out.items()}
    return out


def song_vector(
    prior: Sequence[float] | np.ndarray, evidence: Evidence | None, cfg: LearnConfig, strength: float
) -> np.ndarray:
    """The configured rule's vector (``cfg.rule``) with the prior worth ``strength`` answers."""
    if cfg.rule == "bayes":
        return bayes_vector(prior, evidence, strength, cfg.noise)
    return posterior_vector(prior, evidence, strength, cfg.against, cfg.floor)


def posterior_vectors(
    priors: Mapping[str, np.ndarray], evidence: Mapping[str, Evidence], cfg: LearnConfig
) -> dict[str, np.ndarray]:
    """The per-song rule's vector (``song_vector``: bayes or additive) for every song of ``priors``."""
    return {
        song_id: song_vector(prior, evidence.get(song_id), cfg, cfg.strength)
        for song_id, prior in priors.items()
    }


def lyric_examples(
    chunks: Mapping[str, Sequence[str]],
    priors: Mapping[str, np.ndarray],
    evidence: Mapping[str, Evidence],
    cfg: LearnConfig,
    targets: Mapping[str, np.ndarray] | None = None,
) -> list[Example]:
    """Soft, evidence-weighted training examples from the lyric chunks of songs users answered about
    (at least ``min_answers`` answers, and a like where ``need_like``; disliked-only songs count
    by default: measured, they add songs scored as meant), in song id order. ``targets``:
    the songs' target vectors where the rule needs all rows (``rule_vectors``); else per song."""
    out: list[Example] = []
    for song_id in sorted(evidence):
        ev = evidence[song_id]
        if ev.answers_count < cfg.min_answers or song_id not in priors:
            continue
        if cfg.need_like and ev.n_likes == 0:
            continue
        target = (
            targets[song_id]
            if targets is not None
            else song_vector(priors[song_id], ev, cfg, cfg.target_strength)
        )
        weight = min(cfg.max_weight, ev.answers_count / (ev.answers_count + cfg.strength))
        for chunk in chunks.get(song_id, ()):
            out.append(soft_example(chunk, [round(float(t), 4) for t in target], weight))
    return out


def reread(rows: Sequence[Mapping[str, Any]], predict: Any) -> list[dict[str, Any]]:
    """The rows with each text's ``scores`` read again by ``predict`` (texts -> [n, 7] probabilities:
    the new model), so that evidence is in the new model's terms; rows without text keep theirs."""
    out = [dict(r) for r in rows]
    texts = sorted({str(r["text"]) for r in out if isinstance(r.get("text"), str) and r["text"].strip()})
    if not texts:
        return out
    read = {t: p for t, p in zip(texts, np.asarray(predict(texts), dtype=np.float64), strict=True)}
    for r in out:
        if r.get("text") in read:
            r["scores"] = {label: float(p) for label, p in zip(LABELS, read[r["text"]], strict=True)}
    return out


def rows_digest(rows: Sequence[Mapping[str, Any]]) -> str:
    """A short fingerprint of the feedback a round learned from (its artefacts name it)."""
    keys = sorted(f"{r.get('recommendation_id')}:{r.get('song_id')}:{r.get('satisfied')}" for r in rows)
    return hashlib.sha256("\n".join(keys).encode()).hexdigest()[:12]


def moved_songs(priors: Mapping[str, np.ndarray], posteriors: Mapping[str, np.ndarray]) -> dict[str, int]:
    """How many songs changed their dominant feeling between prior and posterior, and how many moved."""
    changed = sum(int(np.argmax(priors[s])) != int(np.argmax(posteriors[s])) for s in posteriors)
    moved = sum(not np.allclose(priors[s], posteriors[s], atol=1e-6) for s in posteriors)
    return {"dominant_changed": changed, "moved": moved}
