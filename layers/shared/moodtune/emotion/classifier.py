"""EmotionClassifier: Korean text -> probabilities over the seven labels, with tokenizers + onnxruntime.

Serving never imports torch or transformers; the bundle carries everything needed.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from moodtune.emotion.bundle import Bundle, BundleError, load_bundle
from moodtune.emotion.lexical import LexicalHead
from moodtune.emotion.text import normalize_text

THREADS_ENV = "ORT_INTRA_OP_THREADS"
# The lexical head's logits ride along with the token arrays (``tokenize``); not a graph input.
LEXICAL_KEY = "lexical_logits"

Encoded = dict[str, np.ndarray]


def threads_from_env() -> int:
    """Intra-op thread count from ORT_INTRA_OP_THREADS (0 or unset: onnxruntime decides)."""
    raw = os.environ.get(THREADS_ENV, "").strip()
    if not raw:
        return 0
    try:
        threads = int(raw)
    except ValueError:
        raise ValueError(
            f"{THREADS_ENV}={raw!r} is not an integer; use 0 (automatic) or a thread count."
        ) from None
    if threads < 0:
        raise ValueError(f"{THREADS_ENV}={threads} is negative; use 0 (automatic) or a thread count.")
    return threads


def session_options(threads: int, pre_optimized: bool) -> ort.SessionOptions:
    """Session options for a bundle: thread count, and no re-optimisation of a graph saved pre-optimised."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # Worker threads keep onnxruntime's default spin-wait: on a quiet 2-core machine turning it off made
    # 2-thread inference 36% slower (86 tokens: 8.05 vs 5.93 ms); it only helped on a machine already
    # busy with other processes. Lambda runs one intra-op thread (ORT_INTRA_OP_THREADS=1): no workers.
    # A bundle whose graph onnxruntime already optimised at export time loads faster without a second pass.
    options.graph_optimization_level = (
        ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        if pre_optimized
        else ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    )
    return options


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of ``logits / temperature`` in float32, stable for large logits."""
    scaled = logits.astype(np.float32) / np.float32(temperature)
    shifted = scaled - scaled.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return (exp / exp.sum(axis=-1, keepdims=True)).astype(np.float32)


class EmotionClassifier:
    """Classifies texts into probabilities over ``labels`` (``moodtune.labels.LABELS`` order)."""

    def __init__(
        self,
        bundle: Bundle,
        session: ort.InferenceSession,
        tokenizer: Tokenizer,
        lexical: LexicalHead | None = None,
    ) -> None:
        self.bundle = bundle
        self.session = session
        self.tokenizer = tokenizer
        if (lexical is None) != (bundle.lexical_weight is None):
            raise BundleError(
                f"{bundle.path}: the lexical head and the manifest's calibration.lexical disagree."
            )
        self.lexical = lexical
        self._input_names = tuple(i.name for i in session.get_inputs())
        missing = {"input_ids", "attention_mask"} - set(self._input_names)
        if missing:
            raise BundleError(
                f"{bundle.model_path}: the graph lacks inputs {sorted(missing)}. Re-export the bundle."
            )
        outputs = session.get_outputs()
        output = next((o for o in outputs if o.name == "logits"), outputs[0])
        self._output_name = output.name
        width = output.shape[-1] if output.shape else None
        if isinstance(width, int) and width != len(bundle.labels):
            raise BundleError(self._width_message(width))

    def _width_message(self, width: object) -> str:
        return (
            f"{self.bundle.model_path}: the graph's output {self._output_name!r} has {width} values per "
            f"text, but the manifest lists {len(self.bundle.labels)} labels. The model was exported from "
            "a checkpoint with another number of labels; fine-tune it on moodtune's labels and re-export."
        )

    @classmethod
    def from_bundle(cls, path: str | Path, threads: int | None = None) -> EmotionClassifier:
        """Load and check the bundle at ``path`` and open an onnxruntime session on it.

        ``threads``: intra-op threads; None reads ORT_INTRA_OP_THREADS (0 = onnxruntime decides).
        """
        bundle = load_bundle(path)
        pre_optimized = bool(bundle.manifest.get("graph_optimization", {}).get("saved", False))
        options = session_options(threads_from_env() if threads is None else threads, pre_optimized)
        try:
            session = ort.InferenceSession(
                str(bundle.model_path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises several private exception types
            raise BundleError(
                f"{bundle.model_path}: onnxruntime cannot load it ({exc}). Re-export the bundle."
            ) from exc
        try:
            tokenizer = Tokenizer.from_file(str(bundle.tokenizer_path))
        except Exception as exc:  # tokenizers raises a bare Exception on a malformed file
            raise BundleError(
                f"{bundle.tokenizer_path}: not a tokenizers file ({exc}). Re-export the bundle."
            ) from exc
        tokenizer.enable_truncation(max_length=bundle.max_length)
        pad_id = tokenizer.token_to_id("[PAD]")
        tokenizer.enable_padding(pad_id=0 if pad_id is None else pad_id, pad_token="[PAD]")
        lexical = None
        if bundle.lexical_path is not None:
            try:
                lexical = LexicalHead.load(bundle.lexical_path)
            except ValueError as exc:
                raise BundleError(f"{bundle.lexical_path}: {exc}. Re-export the bundle.") from exc
        return cls(bundle, session, tokenizer, lexical)

    @property
    def model_version(self) -> str:
        return self.bundle.model_version

    @property
    def max_length(self) -> int:
        return self.bundle.max_length

    @property
    def lines_per_chunk(self) -> int:
        """Lyric lines per chunk this model reads songs in (``Bundle.lines_per_chunk``)."""
        return self.bundle.lines_per_chunk

    @property
    def labels(self) -> tuple[str, ...]:
        return self.bundle.labels

    def tokenize(self, texts: Sequence[str]) -> Encoded:
        """Normalise and tokenize a batch: int64 arrays [n, longest in batch] for each graph input, and
        with a lexical head its logits [n, 7] under ``LEXICAL_KEY``."""
        texts = [normalize_text(t) for t in texts]
        encodings = self.tokenizer.encode_batch(texts)
        width = len(encodings[0].ids) if encodings else 0
        encoded: Encoded = {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64).reshape(len(texts), width),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64).reshape(
                len(texts), width
            ),
        }
        if "token_type_ids" in self._input_names:
            encoded["token_type_ids"] = np.zeros_like(encoded["input_ids"])
        if self.lexical is not None:
            encoded[LEXICAL_KEY] = self.lexical.logits(texts)
        return encoded

    @staticmethod
    def take(encoded: Encoded, rows: np.ndarray, width: int) -> Encoded:
        """The ``rows`` of a tokenized batch, token arrays cut to ``width`` tokens (per-text arrays such
        as the lexical logits are kept whole)."""
        return {name: a[rows] if name == LEXICAL_KEY else a[rows, :width] for name, a in encoded.items()}

    @property
    def temperature(self) -> float:
        """The bundle's calibration temperature (``Bundle.temperature``)."""
        return self.bundle.temperature

    def infer(self, encoded: Encoded) -> np.ndarray:
        """Run the graph on tokenized input; calibrated float32 probabilities [n, 7] in label order."""
        return softmax(self.fused_logits(encoded), self.bundle.temperature)

    def fused_logits(self, encoded: Encoded) -> np.ndarray:
        """The graph's logits plus the lexical head's times its weight (the graph's alone without a
        head): what the temperature divides."""
        logits = self.infer_logits(encoded)
        if self.lexical is None:
            return logits
        return logits + np.float32(self.bundle.lexical_weight) * encoded[LEXICAL_KEY]

    def infer_logits(self, encoded: Encoded) -> np.ndarray:
        """The graph's raw logits [n, 7] (before temperature scaling and softmax)."""
        n = encoded["input_ids"].shape[0]
        if n == 0:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        feed = {name: encoded[name] for name in self._input_names}
        (logits,) = self.session.run([self._output_name], feed)
        # A graph with a symbolic output width is only checked here, when it first runs.
        if logits.ndim != 2 or logits.shape != (n, len(self.labels)):
            raise BundleError(self._width_message(logits.shape[-1] if logits.ndim else logits.shape))
        return logits

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        """Probabilities [len(texts), 7] for a batch of texts."""
        return self.infer(self.tokenize(texts))

    def predict_one(self, text: str) -> np.ndarray:
        """Probabilities [7] for one text."""
        return self.predict([text])[0]
