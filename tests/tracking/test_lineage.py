import polars as pl

from dualhrq.tracking.lineage import frame_sha256, git_commit
from dualhrq.tracking.mlflow_run import override_tags


def test_frame_hash_is_stable_and_sensitive_to_values():
    a = pl.DataFrame({"ts": [1, 2], "symbol": ["A", "B"], "close": [1.0, 2.0]})
    assert frame_sha256(a) == frame_sha256(a.clone())
    assert frame_sha256(a) != frame_sha256(a.with_columns(pl.col("close") * 1.000001))
    assert frame_sha256(a) != frame_sha256(a.rename({"close": "open"}))
    assert len(frame_sha256(a)) == 64


def test_git_commit_outside_a_repository(tmp_path):
    assert git_commit(tmp_path) == "unknown"


def test_override_tags_carry_each_override():
    tags = override_tags(["+experiment=regime_film", "model/conditioning=none"])
    assert tags["override.experiment"] == "regime_film"
    assert tags["override.model/conditioning"] == "none"
    assert tags["hydra.overrides"] == "+experiment=regime_film model/conditioning=none"
