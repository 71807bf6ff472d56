"""The load test's audit: it must see a lost record, a duplicate, lost feedback and a stray 5xx."""

from __future__ import annotations

from infra.local.loadtest import Call, Client, audit_items, percentile


def client() -> Client:
    c = Client(number=0, api_url="http://127.0.0.1:1", seed=1)
    c.recommendations = {"r1": ["s1", "s2"], "r2": ["s3"]}
    c.feedback = {("r1", "s2"): (True, "2026-12-02T00:00:00.000Z")}
    c.calls = [Call("POST /v1/recommendations", 201, 5.0), Call("POST /v1/recommendations", 503, 5.0, True)]
    return c


def items() -> list[dict]:
    return [
        {
            "recommendation_id": "r1",
            "song_ids": {"s2", "s1"},
            "feedback": {"s2": {"satisfied": True, "at": "2026-12-02T00:00:00.000Z"}},
        },
        {"recommendation_id": "r2", "song_ids": {"s3"}},
    ]


def test_a_clean_run_passes_and_a_503_with_retry_after_is_documented() -> None:
    result = audit_items([client()], items(), samples=0)
    assert result.ok and result.documented_503 == 1


def test_every_kind_of_loss_is_seen() -> None:
    lost = audit_items([client()], items()[:1], samples=0)
    assert lost.lost_records == 1 and not lost.ok
    duplicated = audit_items([client()], [*items(), items()[1]], samples=0)
    assert duplicated.duplicated == 1 and not duplicated.ok
    stale = items()
    stale[0]["feedback"]["s2"]["satisfied"] = False
    assert audit_items([client()], stale, samples=0).lost_feedback == 1
    stray = client()
    stray.calls.append(Call("POST /v1/recommendations", 502, 5.0))
    stray.calls.append(Call("POST /v1/recommendations", 503, 5.0, retry_after=False))
    assert audit_items([stray], items(), samples=0).unexplained_5xx == 2
    extra = [*items(), {"recommendation_id": "nobody", "song_ids": {"s1"}}]
    assert audit_items([client()], extra, samples=0).unannounced_records == 1
    assert audit_items([client()], extra, samples=1).ok


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 50), percentile(values, 99), percentile([7.0], 99)) == (50.0, 99.0, 7.0)
