"""The demo WordPiece learner: deterministic across processes, Korean chat tokens intact."""

import subprocess
import sys
from pathlib import Path

from model_export.tokenizer import CHAT_TOKENS, SPECIAL_TOKENS, synthetic_wordpiece, train_wordpiece

ROOT = Path(__file__).resolve().parents[2]
TEXTS = [
    "오늘 진짜 행복했어 ㅋㅋㅋ",
    "너무 슬퍼서 울었어 ㅠㅠ",
    "진짜 화나네 ㅡㅡ",
    "내일 회의는 세 시야",
    "행복한 하루였다",
    "슬픈 영화를 봤어",
] * 3

_TRAIN = f"""
import sys
sys.path[:0] = [{str(ROOT / "layers" / "shared")!r}, {str(ROOT)!r}]
from model_export.tokenizer import train_wordpiece
print(train_wordpiece({TEXTS!r}, vocab_size=80).to_str())
"""


def test_same_texts_give_the_same_tokenizer_in_every_process():
    # tokenizers' own trainer numbered (and on ties chose) tokens in per-process hash order.
    runs = {subprocess.run([sys.executable, "-c", _TRAIN], capture_output=True, text=True, check=True).stdout
            for _ in range(2)}  # fmt: skip
    assert len(runs) == 1
    assert train_wordpiece(TEXTS, vocab_size=80).to_str() + "\n" == runs.pop()


def test_vocabulary_and_tokens():
    tokenizer = train_wordpiece(TEXTS, vocab_size=80)
    vocab = tokenizer.get_vocab()
    assert [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])][:5] == SPECIAL_TOKENS
    assert set(CHAT_TOKENS) <= set(vocab)
    assert len(vocab) <= 80
    encoding = tokenizer.encode("오늘 진짜 행복했어 ㅋㅋㅋ")
    assert encoding.tokens[0] == "[CLS]" and encoding.tokens[-1] == "[SEP]"
    assert "ㅋㅋㅋ" in encoding.tokens  # compatibility jamo kept (no NFKC)
    assert "[UNK]" not in encoding.tokens


def test_synthetic_vocabulary_has_the_exact_size():
    assert synthetic_wordpiece(35000).get_vocab_size() == 35000
