"""model_export.demo.concatenated: joined training texts for lyric-length inputs."""

from model_export.datasets import Example
from model_export.demo import concatenated

TRAIN = [Example(f"{label}{i}", label) for label in ("joy", "anger", "fear") for i in range(6)]


def test_joins_two_to_four_texts_of_one_label_in_label_turns():
    joined = concatenated(TRAIN, 30, seed=0)
    assert len(joined) == 30
    assert [e.label for e in joined[:6]] == ["anger", "fear", "joy"] * 2
    for example in joined:
        parts = example.text.split(" ")
        assert 2 <= len(parts) <= 4
        assert len(set(parts)) == len(parts)  # no text twice in one join
        assert all(part.startswith(example.label) for part in parts)


def test_is_deterministic_per_seed_and_empty_for_zero():
    assert concatenated(TRAIN, 12, seed=1) == concatenated(TRAIN, 12, seed=1)
    assert concatenated(TRAIN, 12, seed=1) != concatenated(TRAIN, 12, seed=2)
    assert concatenated(TRAIN, 0, seed=0) == []


def test_a_label_with_one_text_is_never_joined_with_another_label():
    few = [Example("alone", "sadness"), *TRAIN]
    for example in concatenated(few, 40, seed=0):
        if example.label == "sadness":
            assert example.text == "alone"
