"""Training the lexical head (``moodtune.emotion.lexical``) and choosing how much the bundle trusts it.

* ``train_lexical``: softmax regression over the hashed n-gram features of the training texts, fit
  to their (soft or one-hot) targets by full-batch Adam with an L2 penalty; torch's sparse matrices
  keep it to seconds for tens of thousands of texts.
* ``fit_fusion``: for each candidate weight λ the temperature T of
  ``softmax((graph + λ·lexical) / T)`` is fit by NLL on the validation split
  (``model_export.calibration.fit_temperature``), and the (λ, T) with the lowest validation NLL
  wins. λ = 0 (the graph alone) is always a candidate, so a head that does not help is not shipped.

The settings were chosen on the demo corpus's validation split (docs/model.md §2c).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from model_export.calibration import fit_temperature, nll, softmax
from model_export.datasets import Example
from moodtune.emotion.lexical import DEFAULT_BUCKETS, LexicalHead, features
from moodtune.labels import NUM_LABELS

log = logging.getLogger(__name__)

WEIGHTS = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0)


@dataclass(frozen=True)
class LexicalConfig:
    """How the head is trained (chosen by validation NLL and accuracy on the demo corpus)."""

    buckets: int = DEFAULT_BUCKETS
    l2: float = 1e-4
    epochs: int = 60
    lr: float = 0.05
    seed: int = 0


def feature_matrix(texts: Sequence[str], buckets: int):
    """A torch sparse [n, buckets] 0/1 matrix of the texts' hashed features."""
    import torch

    rows: list[int] = []
    cols: list[int] = []
    for i, text in enumerate(texts):
        ids = features(text, buckets)
        rows.extend([i] * len(ids))
        cols.extend(ids.tolist())
    index = torch.tensor([rows, cols], dtype=torch.int64)
    values = torch.ones(len(rows), dtype=torch.float32)
    return torch.sparse_coo_tensor(index, values, (len(texts), buckets), check_invariants=False).coalesce()


def train_lexical(examples: Sequence[Example], cfg: LexicalConfig = LexicalConfig()) -> LexicalHead:
    """Fit the head to ``examples``' targets (soft cross-entropy + ``cfg.l2`` · ‖W‖²)."""
    import torch

    if not examples:
        raise ValueError("no training examples for the lexical head")
    torch.manual_seed(cfg.seed)
    x = feature_matrix([e.text for e in examples], cfg.buckets)
    targets = torch.tensor(np.array([e.target for e in examples]), dtype=torch.float32)
    weights = torch.zeros(cfg.buckets, NUM_LABELS, requires_grad=True)
    bias = torch.zeros(NUM_LABELS, requires_grad=True)
    optimizer = torch.optim.Adam([weights, bias], lr=cfg.lr)
    for _ in range(cfg.epochs):
        optimizer.zero_grad()
        logits = torch.sparse.mm(x, weights) + bias
        loss = -(targets * torch.log_softmax(logits, dim=1)).sum(dim=1).mean() + cfg.l2 * (weights**2).sum()
        loss.backward()
        optimizer.step()
    return LexicalHead(weights.detach().numpy().astype(np.float32), bias.detach().numpy().astype(np.float32))


@dataclass(frozen=True)
class Fusion:
    """The chosen weight and temperature, with the validation NLL of every candidate."""

    weight: float
    temperature: float
    table: list[dict[str, float]]

    def about(self, n_val: int) -> dict[str, Any]:
        """What the manifest records of the choice."""
        return {
            "fit_on": f"validation split ({n_val} texts): the lowest NLL over weights {list(WEIGHTS)}",
            "candidates": self.table,
        }


def fit_fusion(
    graph_logits: np.ndarray,
    lexical_logits: np.ndarray,
    targets: np.ndarray,
    weights: Sequence[float] = WEIGHTS,
) -> Fusion:
    """The (λ, T) whose ``softmax((graph + λ·lexical) / T)`` has the lowest NLL on ``targets``."""
    graph = np.asarray(graph_logits, dtype=np.float64)
    lexical = np.asarray(lexical_logits, dtype=np.float64)
    if graph.shape != lexical.shape:
        raise ValueError(f"graph logits {graph.shape} and lexical logits {lexical.shape} differ in shape")
    table = []
    for weight in sorted({0.0, *weights}):
        fused = graph + weight * lexical
        temperature = fit_temperature(fused, targets)
        table.append(
            {
                "weight": weight,
                "temperature": temperature,
                "nll": round(nll(softmax(fused, temperature), targets), 5),
            }
        )
    best = min(table, key=lambda row: (row["nll"], row["weight"]))
    log.info(
        "lexical fusion: weight %.2f, temperature %.4f (validation NLL %.4f)",
        best["weight"],
        best["temperature"],
        best["nll"],
    )
    return Fusion(weight=best["weight"], temperature=best["temperature"], table=table)


def fuse(
    head: LexicalHead, graph_logits: np.ndarray, val: Sequence[Example]
) -> tuple[LexicalHead | None, Fusion]:
    """``head`` fused with a network whose validation logits are ``graph_logits`` (``val``'s order);
    the head is None where validation chose weight 0."""
    targets = np.array([e.target for e in val])
    fusion = fit_fusion(graph_logits, head.logits([e.text for e in val]), targets)
    return (head if fusion.weight > 0 else None), fusion


def export_fields(
    temperature: float, head: LexicalHead | None, fusion: Fusion | None, n_val: int, **about: Any
) -> dict[str, Any]:
    """The ``ExportOptions`` calibration fields: the network's own ``temperature`` without a fusion,
    else the fusion's temperature with its head (None where validation chose weight 0)."""
    if fusion is None or head is None:
        return {"temperature": temperature}
    return {
        "temperature": fusion.temperature,
        "lexical": head,
        "lexical_weight": fusion.weight,
        "lexical_about": {**fusion.about(n_val), **about},
    }
