"""WordPiece tokenizers built the way KoELECTRA's vocabulary was (BertWordPieceTokenizer settings)."""

from __future__ import annotations

import heapq
import itertools
import random
from collections import Counter
from collections.abc import Iterable

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
# Compatibility jamo and emoticons that Korean chat text relies on; kept as whole tokens.
CHAT_TOKENS = ["ㅋ", "ㅋㅋ", "ㅋㅋㅋ", "ㅎ", "ㅎㅎ", "ㅠ", "ㅠㅠ", "ㅜ", "ㅜㅜ", "ㄷㄷ", "ㅡㅡ", "^^"]


def _skeleton(vocab: dict[str, int] | None = None) -> Tokenizer:
    tokenizer = Tokenizer(models.WordPiece(vocab or {}, unk_token="[UNK]", max_input_chars_per_word=100))
    # KoELECTRA: clean_text, handle_chinese_chars, strip_accents=False, lowercase=False. No NFKC anywhere.
    tokenizer.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=False, lowercase=False
    )
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece(prefix="##")
    return tokenizer


def _add_post_processor(tokenizer: Tokenizer) -> Tokenizer:
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    return tokenizer


def train_wordpiece(texts: Iterable[str], vocab_size: int, min_frequency: int = 2) -> Tokenizer:
    """Learn a WordPiece vocabulary of up to ``vocab_size`` tokens from ``texts``; the same texts always
    give the same tokenizer.

    ``tokenizers``' own WordPieceTrainer breaks ties between equally frequent merges in hash-map order,
    which differs from process to process: on the demo corpus two runs gave different vocabularies, so
    every ``make demo-model`` would have produced a different model. This learner runs the same
    algorithm (BPE merges over words, ``##`` marking word-inner pieces) with ties broken by the pieces'
    text, and the result is a ``tokenizers`` WordPiece model with KoELECTRA's normalizer and
    pre-tokenizer.
    """
    skeleton = _skeleton()
    words: Counter[str] = Counter()
    for text in texts:
        normalized = skeleton.normalizer.normalize_str(text)
        words.update(word for word, _ in skeleton.pre_tokenizer.pre_tokenize_str(normalized))
    vocab = [*SPECIAL_TOKENS, *CHAT_TOKENS]
    vocab += sorted({piece for word in words for piece in _pieces(word)} - set(vocab))
    merges = _learn_merges(words, max(0, vocab_size - len(vocab)), min_frequency)
    for token in merges:
        if token not in vocab:
            vocab.append(token)
    return _add_post_processor(_skeleton(canonical_vocab(dict.fromkeys(vocab, 0))))


def _pieces(word: str) -> list[str]:
    return [word[0], *("##" + c for c in word[1:])]


def _join(a: str, b: str) -> str:
    return a + b.removeprefix("##")


def _learn_merges(words: Counter[str], n_merges: int, min_frequency: int) -> list[str]:
    """Greedy BPE merges, most frequent pair first, ties by the pair's text (deterministic)."""
    symbols = [_pieces(w) for w in words]
    freqs = list(words.values())
    pair_counts: Counter[tuple[str, str]] = Counter()
    where: dict[tuple[str, str], set[int]] = {}
    for i, syms in enumerate(symbols):
        for pair in itertools.pairwise(syms):
            pair_counts[pair] += freqs[i]
            where.setdefault(pair, set()).add(i)
    heap = [(-n, pair) for pair, n in pair_counts.items()]
    heapq.heapify(heap)
    merged: list[str] = []
    while heap and len(merged) < n_merges:
        neg, pair = heapq.heappop(heap)
        if pair_counts.get(pair, 0) != -neg:
            continue  # stale entry
        if -neg < min_frequency:
            break
        token = _join(*pair)
        merged.append(token)
        changed: set[tuple[str, str]] = set()
        for i in sorted(where.pop(pair, ())):
            syms, f = symbols[i], freqs[i]
            for old in itertools.pairwise(syms):
                pair_counts[old] -= f
                changed.add(old)
            out, j = [], 0
            while j < len(syms):
                if j + 1 < len(syms) and (syms[j], syms[j + 1]) == pair:
                    out.append(token)
                    j += 2
                else:
                    out.append(syms[j])
                    j += 1
            symbols[i] = out
            for new in itertools.pairwise(out):
                pair_counts[new] += f
                where.setdefault(new, set()).add(i)
                changed.add(new)
        for p in changed:
            if pair_counts[p] > 0:
                heapq.heappush(heap, (-pair_counts[p], p))
            else:
                pair_counts.pop(p, None)
    return merged


def canonical_vocab(vocab: dict[str, int]) -> dict[str, int]:
    """Number a vocabulary in a fixed order: special and chat tokens, then by kind, length and text."""
    fixed = [t for t in [*SPECIAL_TOKENS, *CHAT_TOKENS] if t in vocab]
    rest = sorted(set(vocab) - set(fixed), key=lambda t: (t.startswith("##"), len(t), t))
    return {token: i for i, token in enumerate([*fixed, *rest])}


def synthetic_wordpiece(vocab_size: int, seed: int = 0) -> Tokenizer:
    """A WordPiece tokenizer with exactly ``vocab_size`` entries: specials, chat tokens, then Hangul
    syllables and ``##`` continuations. For shape-true benchmarks, not for meaning."""
    vocab: dict[str, int] = {}
    for token in [*SPECIAL_TOKENS, *CHAT_TOKENS]:
        vocab.setdefault(token, len(vocab))
    syllables = [chr(c) for c in range(0xAC00, 0xD7A4)]  # 11,172 Hangul syllables
    for s in syllables:
        if len(vocab) >= vocab_size:
            break
        vocab.setdefault(s, len(vocab))
    for s in syllables:
        if len(vocab) >= vocab_size:
            break
        vocab.setdefault("##" + s, len(vocab))
    rng = random.Random(seed)
    while len(vocab) < vocab_size:  # random two-syllable words fill the rest, reproducibly
        vocab.setdefault(rng.choice(syllables) + rng.choice(syllables), len(vocab))
    return _add_post_processor(_skeleton(vocab))
