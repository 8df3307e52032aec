from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score, davies_bouldin_score, normalized_mutual_info_score

import sngep
from sngep import metrics


def _clustered(n_per=(5, 7, 4), shape=(6, 5), seed=0):
    rng = np.random.default_rng(seed)
    protos = rng.random((len(n_per), *shape)) * 3
    images, labels = [], []
    for c, n in enumerate(n_per):
        images.append(protos[c] + 0.5 * rng.standard_normal((n, *shape)))
        labels += [f"cl{c}"] * n
    perm = rng.permutation(sum(n_per))
    return np.concatenate(images)[perm], np.array(labels)[perm]


# --- DBI Euclidean -------------------------------------------------------------------------


def test_dbi_euclidean_equals_sklearn():
    images, labels = _clustered()
    expected = davies_bouldin_score(images.reshape(len(images), -1), labels)
    np.testing.assert_allclose(metrics.dbi_euclidean(images, labels), expected, rtol=1e-10)
    # (N, P) input, categorical labels
    cat = pd.Categorical(labels, categories=["cl2", "cl0", "cl1", "unused"])
    np.testing.assert_allclose(
        metrics.dbi_euclidean(images.reshape(len(images), -1), cat), expected, rtol=1e-10
    )


def test_dbi_euclidean_with_mask_equals_sklearn_on_masked_pixels():
    images, labels = _clustered(seed=1)
    mask = np.zeros(images.shape[1:], bool)
    mask[1:5, 1:4] = True
    garbage = images.copy()
    garbage[:, ~mask] = np.random.default_rng(9).normal(0, 100, (len(images), (~mask).sum()))
    expected = davies_bouldin_score(images[:, mask], labels)
    np.testing.assert_allclose(
        metrics.dbi_euclidean(garbage, labels, mask=mask), expected, rtol=1e-10
    )
    assert not np.isclose(metrics.dbi_euclidean(garbage, labels), expected)


def test_dbi_better_for_true_labels():
    images, labels = _clustered(seed=2)
    shuffled = np.random.default_rng(0).permutation(labels)
    assert metrics.dbi_euclidean(images, labels) < metrics.dbi_euclidean(images, shuffled)
    assert metrics.dbi_pearson(images, labels) < metrics.dbi_pearson(images, shuffled)


# --- DBI Pearson ---------------------------------------------------------------------------


def test_dbi_pearson_hand_computed():
    # Cluster A: a1 = (0,1,2), a2 = (0,2,2); centroid cA = (0, 1.5, 2).
    # Cluster B: the same images reversed: b1 = (2,1,0), b2 = (2,2,0); cB = (2, 1.5, 0).
    # Centred: a1 -> (-1,0,1), |.| = sqrt(2);  a2 -> (-4/3, 2/3, 2/3), |.| = sqrt(24)/3;
    #          cA -> (-7/6, 1/3, 5/6), |.| = sqrt(78)/6.
    # r(a1, cA) = 2 / (sqrt(2) sqrt(78)/6) = 12/sqrt(156)
    # r(a2, cA) = (7/3) / (sqrt(24)/3 * sqrt(78)/6) = 42/sqrt(1872)
    # d_A = 1 - (r1 + r2)/2, and d_B = d_A (reversal preserves r).
    # cB centred = (5/6, 1/3, -7/6):
    # r(cA, cB) = (-35/36 + 1/9 - 35/36) / (78/36) = -11/13, so d_AB = 24/13.
    # DBI = mean_i max_j (d_i + d_j) / d_ij = 2 d_A / (24/13).
    images = np.array([[0, 1, 2], [2, 1, 0], [0, 2, 2], [2, 2, 0]], dtype=float)
    labels = ["A", "B", "A", "B"]
    d_a = 1 - (12 / np.sqrt(156) + 42 / np.sqrt(1872)) / 2
    expected = 2 * d_a / (24 / 13)
    np.testing.assert_allclose(metrics.dbi_pearson(images, labels), expected, rtol=1e-12)
    assert abs(expected - 0.037107) < 1e-5  # sanity of the hand arithmetic


def test_dbi_pearson_is_shift_and_scale_invariant_per_image():
    images, labels = _clustered(seed=3)
    rng = np.random.default_rng(1)
    a = rng.uniform(0.5, 2.0, (len(images), 1, 1))
    # per-image scaling leaves every member's r unchanged but moves the centroids, so
    # only check invariance to a common affine map of all images
    base = metrics.dbi_pearson(images, labels)
    np.testing.assert_allclose(metrics.dbi_pearson(3.0 * images + 7.0, labels), base, rtol=1e-10)
    assert np.isfinite(metrics.dbi_pearson(images * a, labels))


def test_dbi_pearson_constant_image_counts_as_distance_one():
    images = np.array([[0, 1, 2], [0, 2, 4], [2, 1, 0], [0, 0, 0]], dtype=float)
    labels = [0, 0, 1, 1]
    # cluster 0: both members perfectly correlated with their centroid -> d_0 = 0.
    # cluster 1: centroid (1, .5, 0); r(b1, c1) = 1; zero image -> r = 0 -> d_1 = (0 + 1)/2.
    # r(c0, c1) = -1 -> d_01 = 2. DBI = mean(0.5/2, 0.5/2) = 0.25.
    np.testing.assert_allclose(metrics.dbi_pearson(images, labels), 0.25, rtol=1e-12)


# --- SAM -----------------------------------------------------------------------------------


def test_sam_hand_computed():
    images = np.array([[1, 0], [0, 1], [1, 1], [2, 2], [0, 0]], dtype=float)
    labels = ["x", "x", "y", "y", "z"]
    # x: mean (.5,.5): both members at pi/4. y: mean (1.5,1.5): angle 0. z: zero image: pi/2.
    per = metrics.sam(images, labels, per_cluster=True)
    assert isinstance(per, pd.Series)
    assert list(per.index) == ["x", "y", "z"]
    np.testing.assert_allclose(per.to_numpy(), [np.pi / 4, 0.0, np.pi / 2], atol=1e-7)
    np.testing.assert_allclose(metrics.sam(images, labels), (np.pi / 4 + np.pi / 2) / 3, atol=1e-7)


def test_sam_unweighted_mean_over_clusters_and_mask():
    # cluster a: angles of (1,0),(1,1),(0,1) to their mean (2/3,2/3) are pi/4, 0, pi/4
    images = np.array([[1, 0, 9], [1, 1, -9], [0, 1, 5], [3, 3, 1]], dtype=float)
    mask = np.array([True, True, False])
    labels = np.array([1, 1, 1, 2])
    per = metrics.sam(images, labels, mask=mask, per_cluster=True)
    np.testing.assert_allclose(per.to_numpy(), [np.pi / 6, 0.0], atol=1e-7)
    np.testing.assert_allclose(metrics.sam(images, labels, mask=mask), np.pi / 12, atol=1e-7)


def test_sam_single_cluster_allowed():
    images, _ = _clustered()
    assert 0 <= metrics.sam(images, np.zeros(len(images), int)) <= np.pi


# --- NMI / ARI -----------------------------------------------------------------------------


def test_nmi_ari_accept_any_label_type():
    rng = np.random.default_rng(0)
    t = rng.integers(0, 4, 60)
    p = np.where(rng.random(60) < 0.7, t, rng.integers(0, 4, 60))
    exp_nmi = normalized_mutual_info_score(t, p)
    exp_ari = adjusted_rand_score(t, p)
    as_str = np.array([f"g{v}" for v in p])
    as_cat = pd.Categorical(as_str, categories=["g3", "g2", "g1", "g0", "never"])
    for pred in (p, as_str, as_cat, pd.Series(as_cat), list(as_str)):
        np.testing.assert_allclose(metrics.nmi(t, pred), exp_nmi, rtol=1e-12)
        np.testing.assert_allclose(metrics.ari(t, pred), exp_ari, rtol=1e-12)
    assert metrics.ari(t, (t + 1) % 4) == pytest.approx(1.0)
    assert metrics.nmi(t, t) == pytest.approx(1.0)


# --- errors --------------------------------------------------------------------------------


def test_errors():
    images, labels = _clustered()
    for fn in (metrics.dbi_euclidean, metrics.dbi_pearson):
        with pytest.raises(ValueError, match="at least 2 clusters"):
            fn(images, np.zeros(len(images)))
        with pytest.raises(ValueError, match="one label per image"):
            fn(images, labels[:-1])
    with pytest.raises(ValueError, match="one label per image"):
        metrics.sam(images, labels[:-1])
    with pytest.raises(ValueError, match="missing"):
        metrics.sam(images, pd.Series(labels).where(np.arange(len(labels)) > 0))
    with pytest.raises(ValueError, match="mask"):
        metrics.dbi_euclidean(images, labels, mask=np.ones((2, 2), bool))
    with pytest.raises(ValueError, match="labels_pred"):
        metrics.nmi([0, 1, 1], [0, 1])
    bad = images.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        metrics.dbi_pearson(bad, labels)


def test_public_exports():
    assert sngep.metrics.dbi_euclidean is metrics.dbi_euclidean
    assert set(sngep.metrics.__all__) >= {"dbi_euclidean", "dbi_pearson", "sam", "nmi", "ari"}
