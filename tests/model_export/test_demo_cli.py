"""model_export.demo's command line: what it hands to training (the run itself is `make demo-model`)."""

import pytest

from model_export import demo
from model_export.lexical import LexicalConfig


class _Stop(Exception):
    pass


def test_max_length_reaches_the_training_config(monkeypatch, tmp_path):
    """The manifest records cfg.max_length; training cuts texts at it. They must be the same number."""
    seen = {}

    def fake_run_demo(corpus, out_dir, reference, shape, cfg, keep_checkpoint=None, **options):
        seen.update(cfg=cfg, keep=keep_checkpoint, **options)
        raise _Stop

    monkeypatch.setattr(demo, "run_demo", fake_run_demo)
    with pytest.raises(_Stop):
        demo.main(["--max-length", "48", "--keep-checkpoint", str(tmp_path / "ckpt")])
    assert seen["cfg"].max_length == 48
    assert seen["keep"] == tmp_path / "ckpt"
    assert (seen["lines_per_chunk"], seen["concat"]) == (2, 0)  # the demo bundle's chunking, no joins
    with pytest.raises(_Stop):
        demo.main([])
    assert seen["cfg"].max_length == 64  # the demo's default, not TrainConfig's 128
    assert seen["lexical"] is None  # the lexical head is opt-in (docs/model.md §2c)
    with pytest.raises(_Stop):
        demo.main(["--lexical", "--seed", "3"])
    assert seen["lexical"] == LexicalConfig(seed=3)
