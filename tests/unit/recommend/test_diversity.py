"""Artist spread and MMR re-ranking on small synthetic pools."""

import numpy as np
import pytest

from moodtune.catalog.songs import Catalog, ScoredSong
from moodtune.labels import NUM_LABELS
from moodtune.recommend.diversity import intra_list_distance, pool_size, rerank
from moodtune.recommend.ranking import recommend
from moodtune.similarity import get_metric

COSINE = get_metric("cosine")


def _pool(rng: np.random.Generator, m: int = 40) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    vectors = rng.dirichlet(np.full(NUM_LABELS, 0.5), size=m).astype(np.float32)
    query = rng.dirichlet(np.full(NUM_LABELS, 0.5)).astype(np.float32)
    relevance = COSINE(query, COSINE.prepare(vectors))
    order = np.argsort(-relevance, kind="stable")
    return vectors[order], relevance[order], np.arange(m)


def test_lambda_one_without_spread_is_the_plain_ranking() -> None:
    vectors, relevance, pool = _pool(np.random.default_rng(0))
    artists = np.zeros(len(pool), dtype=np.int32)  # one artist for everything
    picks = rerank(pool, relevance, vectors, artists, 10, mmr_lambda=1.0, artist_spread=False, metric=COSINE)
    assert picks == list(range(10))


def test_artist_spread_never_repeats_while_another_artist_is_left() -> None:
    vectors, relevance, pool = _pool(np.random.default_rng(1))
    artists = np.arange(len(pool), dtype=np.int32) % 4  # 4 artists
    picks = rerank(pool, relevance, vectors, artists, 6, mmr_lambda=1.0, artist_spread=True, metric=COSINE)
    assert len(picks) == 6 and len(set(picks)) == 6
    assert len({int(artists[p]) for p in picks[:4]}) == 4  # the first four are four artists
    # each pick is the most relevant song of an artist not yet in the list
    assert picks[:4] == sorted(picks[:4])


def test_artist_spread_fills_the_list_when_the_catalog_cannot() -> None:
    vectors, relevance, pool = _pool(np.random.default_rng(2), m=5)
    artists = np.zeros(5, dtype=np.int32)
    picks = rerank(pool, relevance, vectors, artists, 5, mmr_lambda=1.0, artist_spread=True, metric=COSINE)
    assert picks == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("metric", ["cosine", "jensen_shannon"])
def test_mmr_trades_a_little_similarity_for_variety(metric: str) -> None:
    sim = get_metric(metric)
    gains, losses = [], []
    for seed in range(20):
        rng = np.random.default_rng(100 + seed)
        vectors = rng.dirichlet(np.full(NUM_LABELS, 0.5), size=60).astype(np.float32)
        query = rng.dirichlet(np.full(NUM_LABELS, 0.5)).astype(np.float32)
        relevance = sim(query, sim.prepare(vectors))
        order = np.argsort(-relevance, kind="stable")
        vectors, relevance = vectors[order], relevance[order]
        artists = np.arange(60, dtype=np.int32)
        plain = rerank(np.arange(60), relevance, vectors, artists, 5, mmr_lambda=1.0, metric=sim)
        mmr = rerank(np.arange(60), relevance, vectors, artists, 5, mmr_lambda=0.5, metric=sim)
        assert mmr[0] == plain[0]  # MMR's first pick is the most relevant song
        assert len(set(mmr)) == 5
        gains.append(intra_list_distance(vectors[mmr], sim) - intra_list_distance(vectors[plain], sim))
        losses.append(float(relevance[plain].mean() - relevance[mmr].mean()))
    assert min(losses) >= -1e-6  # never more similar than the plain top 5
    assert np.mean(gains) > 0  # and more varied on average


def test_pool_size_and_bad_lambda() -> None:
    assert pool_size(5, 300) == 50 and pool_size(20, 300) == 200 and pool_size(5, 7) == 7
    vectors, relevance, pool = _pool(np.random.default_rng(3))
    with pytest.raises(ValueError, match="mmr_lambda"):
        rerank(pool, relevance, vectors, np.zeros(len(pool), np.int32), 3, mmr_lambda=1.5, metric=COSINE)


def test_recommend_gives_no_repeated_artist_in_both_modes() -> None:
    rng = np.random.default_rng(7)
    vectors = rng.dirichlet(np.full(NUM_LABELS, 0.4), size=200)
    songs = tuple(
        ScoredSong(f"s{i:03d}", f"t{i}", f"artist {i % 15}", tuple(map(float, v)))
        for i, v in enumerate(vectors)
    )
    catalog = Catalog(model_version="m", songs=songs)
    for query in rng.dirichlet(np.full(NUM_LABELS, 0.4), size=20).astype(np.float32):
        for mode in ("distribution", "dominant"):
            matches = recommend(catalog, query, limit=5, mode=mode)
            artists = [m.song.artist for m in matches]
            assert len(artists) == len(set(artists)), (mode, artists)
