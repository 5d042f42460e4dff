"""Multi-scale window shapes, the PCA encoder and the VQ codebook."""

import numpy as np
import pytest
from sklearn.cluster import KMeans

from dualhrq.errors import ConfigError, DataError
from dualhrq.patterns.codebook import assign_codes, code_perplexity, fit_codebook
from dualhrq.patterns.detection import PatternEncoder, check_scales, window_shapes


def test_window_shapes_are_block_means_worked_by_hand():
    features = np.arange(12, dtype=np.float32).reshape(6, 2)  # row r = [2r, 2r + 1]
    shapes = window_shapes(features, np.array([5]), scale=4, points=2)
    # rows 2..5 in two blocks: mean of rows 2,3 = [5, 6]; rows 4,5 = [9, 10]; flattened block by block
    np.testing.assert_allclose(shapes, [[5, 6, 9, 10]])
    with pytest.raises(DataError, match="before the first feature row"):
        window_shapes(features, np.array([2]), scale=4, points=2)


def test_a_slow_copy_of_a_pattern_embeds_like_the_original():
    # a ramp over 4 bars and the same ramp stretched over 8 bars have the same block shape
    rng = np.random.default_rng(0)
    features = rng.normal(size=(400, 3)).astype(np.float32)
    features[100:104, 0] = [1, 2, 3, 4]
    features[200:208, 0] = [1, 1, 2, 2, 3, 3, 4, 4]
    features[100:104, 1:] = 0.0
    features[200:208, 1:] = 0.0
    enc = PatternEncoder(scales=[4, 8], points=4, dim=4).fit(features, np.arange(10, 400))
    emb = enc.embed(features, np.array([103, 207]))
    assert emb.shape == (2, 2, 4)
    np.testing.assert_allclose(emb[0, 0], emb[1, 1], atol=1e-5)  # scale 4 at 103 == scale 8 at 207
    assert 0 < enc.explained_variance() <= 1


def test_scales_are_validated():
    assert check_scales([8, 16], 8, seq_len=16) == (8, 16)
    for scales, points, seq_len, match in [([12], 8, None, "multiple of points"), ([16, 8], 8, None, "ascending"),
                                           ([8, 64], 8, 32, r"longer than the input window, seq_len=32"),
                                           ([], 8, None, "empty")]:
        with pytest.raises(ConfigError, match=match) as err:
            check_scales(scales, points, seq_len)
        assert err.value.field == "scales"  # model.cond.patterns.scales once its reader locates it


def test_codebook_matches_kmeans_on_separated_clusters():
    rng = np.random.default_rng(1)
    centres = np.array([[0, 0], [10, 0], [0, 10]], np.float32)
    x = (centres[rng.integers(0, 3, 600)] + rng.normal(scale=0.1, size=(600, 2))).astype(np.float32)
    ours = fit_codebook(x, 3, seed=0)
    ref = KMeans(3, n_init=5, random_state=0).fit(x).cluster_centers_
    ours_sorted, ref_sorted = ours[np.lexsort(ours.T[::-1])], ref[np.lexsort(ref.T[::-1])]
    np.testing.assert_allclose(ours_sorted, ref_sorted, atol=0.05)
    codes = assign_codes(x, ours)
    # equal-sized clusters in use: perplexity = exp(entropy) close to 3
    assert code_perplexity(codes, 3) == pytest.approx(3.0, abs=0.05)
