"""Similarity metrics and top-k, against straightforward float64 references."""

import numpy as np
import pytest

from moodtune.similarity import METRICS, get_metric, top_k


def _cosine_reference(q: np.ndarray, m: np.ndarray) -> np.ndarray:
    q64, m64 = q.astype(np.float64), m.astype(np.float64)
    return (m64 @ q64) / (np.linalg.norm(m64, axis=1) * np.linalg.norm(q64))


def _js_similarity_reference(p: np.ndarray, q: np.ndarray) -> float:
    p, q = p / p.sum(), q / q.sum()
    mix = (p + q) / 2

    def kl(a: np.ndarray, b: np.ndarray) -> float:
        nz = a > 0
        return float(np.sum(a[nz] * np.log2(a[nz] / b[nz])))

    return 1.0 - np.sqrt(max(0.5 * kl(p, mix) + 0.5 * kl(q, mix), 0.0))


def _reference_top_k(scores: np.ndarray, k: int, exclude: np.ndarray | None = None) -> np.ndarray:
    idx = np.arange(scores.size)
    keep = ~exclude if exclude is not None else np.ones(scores.size, bool)
    keep &= ~np.isnan(scores)
    idx = idx[keep]
    order = sorted(idx, key=lambda i: (-scores[i], i))
    return np.array(order[:k], dtype=np.intp)


@pytest.fixture(scope="module")
def distributions() -> np.ndarray:
    return np.random.default_rng(7).dirichlet(np.ones(7) * 0.5, size=300).astype(np.float32)


def test_cosine_matches_reference(distributions: np.ndarray) -> None:
    metric = get_metric("cosine")
    query = distributions[3]
    got = metric(query, metric.prepare(distributions))
    np.testing.assert_allclose(got, _cosine_reference(query, distributions), atol=1e-6)
    assert got[3] == pytest.approx(1.0, abs=1e-6)
    assert got.dtype == np.float32


def test_cosine_is_scale_invariant_and_zero_rows_are_not_nan(distributions: np.ndarray) -> None:
    metric = get_metric("cosine")
    matrix = np.vstack([distributions[:5], np.zeros((1, 7), np.float32)])
    got = metric(distributions[0] * 10, metric.prepare(matrix))
    assert got[0] == pytest.approx(1.0, abs=1e-6)
    assert got[-1] == 0.0


def test_jensen_shannon_matches_reference(distributions: np.ndarray) -> None:
    metric = get_metric("jensen_shannon")
    query = distributions[11]
    got = metric(query, metric.prepare(distributions))
    expected = [
        _js_similarity_reference(query.astype(np.float64), row.astype(np.float64)) for row in distributions
    ]
    np.testing.assert_allclose(got, expected, atol=2e-5)
    assert got[11] == pytest.approx(1.0, abs=1e-3)


def test_jensen_shannon_bounds_and_symmetry() -> None:
    metric = get_metric("jensen_shannon")
    a = np.array([1, 0, 0, 0, 0, 0, 0], np.float32)
    b = np.array([0, 1, 0, 0, 0, 0, 0], np.float32)
    both = np.vstack([a, b])
    assert metric(a, metric.prepare(both)).tolist() == pytest.approx([1.0, 0.0], abs=1e-6)
    assert metric(b, metric.prepare(a[None]))[0] == pytest.approx(metric(a, metric.prepare(b[None]))[0])


def test_registry_names_the_known_metrics() -> None:
    assert set(METRICS) == {"cosine", "jensen_shannon"}
    with pytest.raises(ValueError, match="cosine, jensen_shannon"):
        get_metric("euclid")


def test_top_k_orders_best_first() -> None:
    scores = np.array([0.1, 0.9, 0.5, 0.7, 0.3], np.float32)
    assert top_k(scores, 3).tolist() == [1, 3, 2]


def test_top_k_breaks_ties_by_lower_index_across_the_partition_boundary() -> None:
    # Six rows tied at 0.5; only two fit after the 0.9. Whatever argpartition keeps, rows 1 and 2 win.
    scores = np.array([0.2, 0.5, 0.5, 0.9, 0.5, 0.5, 0.5, 0.5], np.float32)
    assert top_k(scores, 3).tolist() == [3, 1, 2]
    assert top_k(scores[::-1].copy(), 3).tolist() == [4, 0, 1]


def test_top_k_all_equal_is_index_order() -> None:
    assert top_k(np.full(50, 0.3, np.float32), 5).tolist() == [0, 1, 2, 3, 4]


def test_top_k_exclude_nan_and_short_catalogs() -> None:
    scores = np.array([0.9, np.nan, 0.8, 0.7], np.float32)
    exclude = np.array([True, False, False, False])
    assert top_k(scores, 2, exclude).tolist() == [2, 3]
    assert top_k(scores, 10, exclude).tolist() == [2, 3]  # neither NaN nor excluded rows
    assert top_k(scores, 10, np.ones(4, bool)).tolist() == []
    assert top_k(scores, 0).tolist() == []
    assert top_k(np.empty(0, np.float32), 3).tolist() == []


@pytest.mark.parametrize("k", [1, 5, 20])
@pytest.mark.parametrize("n", [1000, 7_500, 100_000, 300_001])
def test_top_k_matches_a_full_sort_with_many_ties(n: int, k: int) -> None:
    # Rounded scores make ties everywhere; large n exercises the block-pruned path.
    rng = np.random.default_rng(n + k)
    scores = np.round(rng.random(n), 3).astype(np.float32)
    exclude = rng.random(n) < 0.01
    got = top_k(scores, k, exclude)
    expected = np.lexsort((np.arange(n), -np.where(exclude, -np.inf, scores)))[:k]
    assert got.tolist() == expected.tolist()


def test_top_k_block_path_when_the_best_values_share_one_block() -> None:
    scores = np.zeros(200_000, np.float32)
    scores[5000:5010] = np.linspace(0.9, 0.99, 10, dtype=np.float32)
    scores[150_000] = 0.95
    got = top_k(scores, 4)
    assert got.tolist() == _reference_top_k(scores, 4).tolist()


def test_top_k_with_almost_everything_excluded_never_returns_excluded_rows() -> None:
    rng = np.random.default_rng(3)
    scores = rng.random(50_000).astype(np.float32)
    exclude = np.ones(scores.size, bool)
    keep = np.array([10, 11, 12, 40_000, 40_001])  # five survivors, in two blocks
    exclude[keep] = False
    got = top_k(scores, 5, exclude)
    assert sorted(got.tolist()) == keep.tolist()
    assert top_k(scores, 20, exclude).tolist() == got.tolist()
