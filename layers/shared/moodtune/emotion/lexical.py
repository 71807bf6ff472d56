"""The lexical head: a linear model over hashed character n-grams, fused with the network's logits.

A text's features are its character 1-3-grams (of the normalised text with a space on each side) and
its words, each hashed into ``buckets`` rows; the head's logits are the sum of those rows plus a bias.
Such a model adds up the evidence of every cue in a text, so two feelings written side by side both
get their share, and on a small corpus it reads single feelings as well as a network trained from
scratch (docs/model.md §2c). The bundle ships it as ``lexical.npz`` with the weight it is fused with:

    probabilities = softmax((network_logits + weight · lexical_logits) / temperature)

``weight`` and ``temperature`` are fit together on the validation split by NLL
(``model_export.lexical.fit_fusion``); a bundle without the file is the network alone. Pure numpy.
"""

from __future__ import annotations

import io
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from moodtune.emotion.text import normalize_text
from moodtune.labels import NUM_LABELS

LEXICAL_FILE = "lexical.npz"
DEFAULT_BUCKETS = 1 << 18
NGRAMS = (1, 2, 3)


def features(text: str, buckets: int = DEFAULT_BUCKETS) -> np.ndarray:
    """The sorted distinct hashed feature ids of one text (character 1-3-grams and words)."""
    text = normalize_text(text)
    padded = f" {text} "
    keys = {f"{n}{padded[i : i + n]}" for n in NGRAMS for i in range(len(padded) - n + 1)}
    keys.update(f"w{word}" for word in text.split())
    return np.array(sorted({zlib.crc32(k.encode("utf-8")) % buckets for k in keys}), dtype=np.int64)


@dataclass(frozen=True)
class LexicalHead:
    """Weights [buckets, 7] and bias [7]: ``logits(texts)`` sums each text's feature rows."""

    weights: np.ndarray
    bias: np.ndarray

    @property
    def buckets(self) -> int:
        return int(self.weights.shape[0])

    def logits(self, texts: Sequence[str]) -> np.ndarray:
        """float32 logits [len(texts), 7] in label order."""
        out = np.empty((len(texts), NUM_LABELS), dtype=np.float32)
        for i, text in enumerate(texts):
            out[i] = self.weights[features(text, self.buckets)].sum(axis=0, dtype=np.float32) + self.bias
        return out

    def save(self, path: Path) -> Path:
        """Write ``path`` (npz: float16 weights, float32 bias); unused rows are zero and compress away.

        Byte for byte the same for the same head (fixed zip timestamps: the file's sha256 names the
        model version)."""
        arrays = {"weights": self.weights.astype(np.float16), "bias": self.bias.astype(np.float32)}
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, array in arrays.items():
                buffer = io.BytesIO()
                np.lib.format.write_array(buffer, array, allow_pickle=False)
                info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, buffer.getvalue())
        return path

    @classmethod
    def load(cls, path: Path) -> LexicalHead:
        """Read a head written by ``save``; ValueError with the reason when the file is not one."""
        try:
            with np.load(path, allow_pickle=False) as data:
                weights = data["weights"].astype(np.float32)
                bias = data["bias"].astype(np.float32)
        except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
            raise ValueError(f"not a lexical head file ({exc})") from exc
        if weights.ndim != 2 or weights.shape[1] != NUM_LABELS or bias.shape != (NUM_LABELS,):
            raise ValueError(
                f"weights {weights.shape} and bias {bias.shape} must be [buckets, {NUM_LABELS}] "
                f"and [{NUM_LABELS}]"
            )
        if not (np.isfinite(weights).all() and np.isfinite(bias).all()):
            raise ValueError("weights or bias hold a value that is not finite")
        return cls(weights, bias)
