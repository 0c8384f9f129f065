"""Dance metrics (FID_k/FID_g, Div, Beat Align Scores) against hand computations and plain loop references."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.linalg import hadamard

from motion_text.metrics.dance import (
    BeatAlignMetric,
    DanceQualityMetric,
    beat_align_score_bailando,
    beat_align_score_fact,
    diversity,
    frechet_distance,
    normalize_by,
)
from motion_text.metrics.dance_features import (
    GEOMETRIC_FEATURE_NAMES,
    HIP_WIDTH,
    HUMERUS_LENGTH,
    SHOULDER_WIDTH,
    SMPL_JOINT_NAMES,
    geometric_features,
    kinetic_features,
)

FPS = 60.0


def _random_dance(rng: np.random.Generator, T: int = 40) -> np.ndarray:
    """A rough skeleton (24 joints around a body layout) with a random walk on top, metres, Y up."""
    base = rng.normal(scale=0.3, size=(1, 24, 3)) + np.array([0.0, 1.0, 0.0])
    walk = np.cumsum(rng.normal(scale=0.02, size=(T, 24, 3)), axis=0)
    return base + walk


# ----------------------------------------------------------------------------------------------------------------------
# kinetic features
# ----------------------------------------------------------------------------------------------------------------------
def _kinetic_loop(positions: np.ndarray, frame_time: float, w: int = 2, published: bool = False) -> np.ndarray:
    """Frame-by-frame transcription of the fairmotion/Bailando averaging windows (Y up).

    ``published``: the acceleration of Bailando's ``calc_average_acceleration``, ``v1 = x_k - x_{k-1} / dt``.
    """
    T, J, _ = positions.shape
    out = []
    for j in range(J):
        ke_h = ke_v = ee = 0.0
        for i in range(1, T):
            v = np.zeros(3)
            cnt = 0
            for k in range(-w, w + 1):
                if i + k - 1 < 0 or i + k >= T:
                    continue
                v += positions[i + k, j] - positions[i + k - 1, j]
                cnt += 1
            v /= cnt * frame_time
            ke_h += v[0] ** 2 + v[2] ** 2
            ke_v += v[1] ** 2
            a = np.zeros(3)
            cnt = 0
            for k in range(-w, w + 1):
                if i + k - 1 < 0 or i + k + 1 >= T:
                    continue
                v2 = (positions[i + k + 1, j] - positions[i + k, j]) / frame_time
                if published:
                    v1 = positions[i + k, j] - positions[i + k - 1, j] / frame_time
                else:
                    v1 = (positions[i + k, j] - positions[i + k - 1, j]) / frame_time
                a += (v2 - v1) / frame_time
                cnt += 1
            ee += np.linalg.norm(a / cnt)
        out += [ke_h / (T - 1), ke_v / (T - 1), ee / (T - 1)]
    return np.array(out)


def test_kinetic_constant_velocity_by_hand():
    rng = np.random.default_rng(0)
    vel = rng.normal(size=(24, 3)) * 0.01  # metres per frame, one velocity per joint
    T = 30
    joints = rng.normal(size=(1, 24, 3)) + np.arange(T)[:, None, None] * vel[None]
    feats = kinetic_features(joints, fps=FPS, energy_term="second_difference").reshape(24, 3)
    v = vel * FPS  # m/s
    np.testing.assert_allclose(feats[:, 0], v[:, 0] ** 2 + v[:, 2] ** 2, rtol=1e-9)
    np.testing.assert_allclose(feats[:, 1], v[:, 1] ** 2, rtol=1e-9)
    np.testing.assert_allclose(feats[:, 2], 0.0, atol=1e-6)


def test_kinetic_constant_acceleration_energy_by_hand():
    acc = np.array([0.3, -0.2, 0.6])  # m/s^2, all joints
    T = 25
    t = np.arange(T) / FPS
    joints = np.zeros((T, 24, 3)) + 0.5 * acc * t[:, None, None] ** 2
    feats = kinetic_features(joints, fps=FPS, energy_term="second_difference").reshape(24, 3)
    np.testing.assert_allclose(feats[:, 2], np.linalg.norm(acc), rtol=1e-6)


def test_kinetic_published_energy_term_by_hand():
    """Bailando's ``v1 = x_k - x_{k-1} / dt``: a static pose has ``a = (0 - (x - 60 x)) * 60 = 59 * 60 x``."""
    rng = np.random.default_rng(3)
    pose = rng.normal(size=(24, 3))
    joints = np.repeat(pose[None], 12, axis=0)
    rel = pose - pose[:1]  # relative to the frame-0 root
    feats = kinetic_features(joints, fps=FPS).reshape(24, 3)  # default: the published term
    np.testing.assert_allclose(feats[:, 2], 59.0 * 60.0 * np.linalg.norm(rel, axis=1), rtol=1e-12)
    np.testing.assert_allclose(feats[:, :2], 0.0, atol=1e-20)
    corrected = kinetic_features(joints, fps=FPS, energy_term="second_difference").reshape(24, 3)
    np.testing.assert_allclose(corrected, 0.0, atol=1e-20)
    with pytest.raises(ValueError, match="energy_term"):
        kinetic_features(joints, energy_term="central")
    with pytest.raises(ValueError, match="energy_term"):
        DanceQualityMetric(energy_term="central")


def test_kinetic_matches_loop_reference_and_preprocessing():
    rng = np.random.default_rng(1)
    joints = _random_dance(rng, T=35)
    ref = _kinetic_loop(joints - joints[:1, :1], 1.0 / FPS)
    np.testing.assert_allclose(kinetic_features(joints, fps=FPS, energy_term="second_difference"), ref, rtol=1e-10)
    published = _kinetic_loop(joints - joints[:1, :1], 1.0 / FPS, published=True)
    np.testing.assert_allclose(kinetic_features(joints, fps=FPS), published, rtol=1e-10)
    np.testing.assert_allclose(kinetic_features(joints, fps=30.0), _kinetic_loop(joints - joints[:1, :1], 1 / 30.0,
                                                                                 published=True), rtol=1e-10)
    ref = published
    # only the first max_frames frames are used
    long = np.concatenate([joints, _random_dance(rng, T=20)])
    np.testing.assert_allclose(kinetic_features(long, fps=FPS, max_frames=35), ref, rtol=1e-10)
    # (T, 72) input and torch tensors are accepted
    np.testing.assert_allclose(kinetic_features(torch.tensor(joints.reshape(35, 72))), ref, rtol=1e-10)
    with pytest.raises(ValueError, match="at least 3 frames"):
        kinetic_features(joints[:2])


# ----------------------------------------------------------------------------------------------------------------------
# geometric features
# ----------------------------------------------------------------------------------------------------------------------
def _geometric_loop(positions: np.ndarray, tpf: float = 1.0 / 120) -> np.ndarray:
    """Frame-by-frame scalar transcription of Bailando's ``manual_new.py`` relations."""
    idx = {n: i for i, n in enumerate(SMPL_JOINT_NAMES)}
    hl, sw, hw = HUMERUS_LENGTH, SHOULDER_WIDTH, HIP_WIDTH

    feats = []
    for t in range(1, positions.shape[0]):
        def P(n, t=t):
            special = {"y_unit": [0, 1, 0], "minus_y_unit": [0, -1, 0], "zero": [0, 0, 0]}
            if n in special:
                return np.array(special[n], dtype=float)
            if n == "y_min":
                return np.array([0, positions[t, :, 1].min(), 0])
            return positions[t, idx[n]]

        def Q(n, t=t):
            return positions[t - 1, idx[n]]

        def move(j1, j2, j3, j4, thr):
            vel = (P(j3) - P(j1)) - (Q(j3) - Q(j1))
            d = P(j2) - P(j1)
            return np.dot(vel, d) / np.linalg.norm(d) / tpf > thr

        def nmove(j1, j2, j3, j4, thr):
            vel = (P(j4) - P(j1)) - (Q(j4) - Q(j1))
            d = np.cross(P(j3) - P(j1), P(j2) - P(j1))
            return np.dot(vel, d) / np.linalg.norm(d) / tpf > thr

        def plane(a, b, c, p, thr):
            n = np.cross(P(c) - P(a), P(b) - P(a))
            return np.dot(n, P(p) - P(a)) / np.linalg.norm(n) > thr

        def nplane(n1, n2, a, p, thr):
            n = P(n2) - P(n1)
            return np.dot(n, P(p) - P(a)) / np.linalg.norm(n) > thr

        def angle(j1, j2, j3, j4, rng):
            u, v = P(j2) - P(j1), P(j4) - P(j3)
            ang = np.degrees(np.arccos(np.dot(u, v) / (np.linalg.norm(u) * np.linalg.norm(v))))
            return rng[0] < ang < rng[1]

        def fast(j, thr):
            return np.linalg.norm(P(j) - Q(j)) / tpf > thr

        feats.append([
            nmove("neck", "rhip", "lhip", "rwrist", 1.8 * hl), nmove("neck", "lhip", "rhip", "lwrist", 1.8 * hl),
            nplane("chest", "neck", "neck", "rwrist", 0.2 * hl), nplane("chest", "neck", "neck", "lwrist", 0.2 * hl),
            move("belly", "chest", "chest", "rwrist", 1.8 * hl), move("belly", "chest", "chest", "lwrist", 1.8 * hl),
            angle("relbow", "rshoulder", "relbow", "rwrist", [0, 110]),
            angle("lelbow", "lshoulder", "lelbow", "lwrist", [0, 110]),
            nplane("lshoulder", "rshoulder", "lwrist", "rwrist", 2.5 * sw),
            move("lwrist", "rwrist", "rwrist", "lwrist", 1.4 * hl),
            move("rwrist", "root", "lwrist", "root", 1.4 * hl), move("lwrist", "root", "rwrist", "root", 1.4 * hl),
            fast("rwrist", 2.5 * hl), fast("lwrist", 2.5 * hl),
            plane("root", "lhip", "ltoes", "rankle", 0.38 * hl), plane("root", "rhip", "rtoes", "lankle", 0.38 * hl),
            nplane("zero", "y_unit", "y_min", "rankle", 1.2 * hl), nplane("zero", "y_unit", "y_min", "lankle", 1.2 * hl),
            nplane("lhip", "rhip", "lankle", "rankle", 2.1 * hw),
            angle("rknee", "rhip", "rknee", "rankle", [0, 110]), angle("lknee", "lhip", "lknee", "lankle", [0, 110]),
            fast("rankle", 2.5 * hl), fast("lankle", 2.5 * hl),
            angle("neck", "root", "rshoulder", "relbow", [25, 180]),
            angle("neck", "root", "lshoulder", "lelbow", [25, 180]),
            angle("neck", "root", "rhip", "rknee", [50, 180]), angle("neck", "root", "lhip", "lknee", [50, 180]),
            plane("rankle", "neck", "lankle", "root", 0.5 * hl), angle("neck", "root", "zero", "y_unit", [70, 110]),
            nplane("zero", "minus_y_unit", "y_min", "rwrist", -1.2 * hl),
            nplane("zero", "minus_y_unit", "y_min", "lwrist", -1.2 * hl),
            fast("root", 2.3 * hl),
        ])
    return np.array(feats, dtype=float).mean(0)


def test_geometric_matches_loop_reference():
    rng = np.random.default_rng(2)
    joints = _random_dance(rng, T=60)
    joints[10:20] += np.linspace(0, 3, 10)[:, None, None]  # some fast frames
    got = geometric_features(joints)
    ref = _geometric_loop(joints - joints[:1, :1])
    assert got.shape == (32,) and len(GEOMETRIC_FEATURE_NAMES) == 32
    np.testing.assert_allclose(got, ref, atol=1e-12)
    assert 0 < got.mean() < 1, "the random dance should switch some relations on and others off"


def test_geometric_fast_root_by_hand():
    """fast(root, 2.3 hl) with velocities at 1/120 s per frame: on exactly for the fast half of the frames."""
    T = 21
    step = np.where(np.arange(1, T) <= 10, 0.5, 3.0) * HUMERUS_LENGTH / 120.0  # speeds 0.5 hl/s and 3 hl/s
    x = np.concatenate([[0.0], np.cumsum(step)])
    joints = np.zeros((T, 24, 3)) + np.random.default_rng(3).normal(size=(1, 24, 3))
    joints[..., 0] += x[:, None]
    feats = geometric_features(joints)
    assert feats[GEOMETRIC_FEATURE_NAMES.index("fast(root)>2.3hl")] == pytest.approx(0.5)


# ----------------------------------------------------------------------------------------------------------------------
# FID, normalisation, diversity
# ----------------------------------------------------------------------------------------------------------------------
def test_frechet_zero_on_itself():
    rng = np.random.default_rng(4)
    a = rng.normal(size=(50, 6)) @ rng.normal(size=(6, 6))
    assert abs(frechet_distance(a, a)) < 1e-6 * np.trace(np.cov(a, rowvar=False))


def test_frechet_closed_form_diagonal_gaussians():
    """Sets with exactly diagonal sample covariances: FD = |mu_a - mu_b|^2 + sum (s_a - s_b)^2."""
    N, d = 16, 4
    H = hadamard(N)[:, 1 : d + 1].astype(float)  # zero-mean, orthogonal columns: sample cov = N/(N-1) I
    s_a, s_b = np.array([1.0, 2.0, 0.5, 3.0]), np.array([2.0, 1.0, 0.5, 0.1])
    mu_a, mu_b = np.array([0.0, 1.0, -1.0, 2.0]), np.array([1.0, 1.0, 0.0, -2.0])
    a, b = mu_a + H * s_a, mu_b + H * s_b
    var_a, var_b = N / (N - 1) * s_a**2, N / (N - 1) * s_b**2
    ref = np.sum((mu_a - mu_b) ** 2) + np.sum((np.sqrt(var_a) - np.sqrt(var_b)) ** 2)
    np.testing.assert_allclose(frechet_distance(a, b), ref, rtol=1e-9)


def test_normalize_by_and_diversity():
    rng = np.random.default_rng(5)
    gt, other = rng.normal(2.0, 3.0, size=(30, 5)), rng.normal(size=(7, 5))
    gt_n, other_n = normalize_by(gt, other)
    np.testing.assert_allclose(gt_n.mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(gt_n.std(0), 1, atol=1e-8)
    np.testing.assert_allclose(other_n, (other - gt.mean(0)) / gt.std(0), rtol=1e-8)

    ref = np.mean([np.linalg.norm(other[i] - other[j]) for i in range(7) for j in range(i + 1, 7)])
    np.testing.assert_allclose(diversity(other), ref, rtol=1e-9)
    with pytest.raises(ValueError, match="at least 2"):
        diversity(other[:1])


# ----------------------------------------------------------------------------------------------------------------------
# beat alignment
# ----------------------------------------------------------------------------------------------------------------------
PERIOD, T_BEAT = 30, 480
BEATS = np.arange(PERIOD, T_BEAT - PERIOD + 1, PERIOD)  # every speed minimum of the test dances


def _dance_with_speed_minima(minima_at: np.ndarray, T: int = T_BEAT) -> np.ndarray:
    """All joints move along x with step s_k (frame k -> k+1), a cosine whose minima lie exactly at ``minima_at``."""
    k = np.arange(T - 1)
    speed = 1.1 - np.cos(2 * np.pi * (k - minima_at[0]) / PERIOD)
    x = np.concatenate([[0.0], np.cumsum(speed)]) * 0.01
    joints = np.zeros((T, 24, 3)) + np.random.default_rng(6).normal(size=(1, 24, 3))
    joints[..., 0] += x[:, None]
    return joints


def test_bas_bailando_perfect_and_shifted():
    # Bailando indexes speed by step k (frame k -> k+1) and compares k with music frames directly
    joints = _dance_with_speed_minima(BEATS)
    assert beat_align_score_bailando(joints, BEATS) == pytest.approx(1.0, abs=1e-12)
    # a 3-frame offset gives exactly exp(-9 / (2 * 9)) for every music beat
    assert beat_align_score_bailando(joints, BEATS + 3) == pytest.approx(math.exp(-0.5), rel=1e-12)
    assert beat_align_score_bailando(joints, BEATS + PERIOD // 2) < 1e-5


def test_bas_fact_perfect_and_shifted():
    # FACT's envelope e_t uses x_t - x_{t-1}: a minimum of step k shows at frame t = k + 1
    joints = _dance_with_speed_minima(BEATS - 1)
    assert beat_align_score_fact(joints, BEATS) == pytest.approx(1.0, abs=1e-12)
    assert beat_align_score_fact(joints, BEATS + 3) == pytest.approx(math.exp(-0.5), rel=1e-12)
    assert beat_align_score_fact(joints, BEATS + PERIOD // 2) < 1e-5
    # motion beats before skip_frames are ignored, music beats too
    assert beat_align_score_fact(joints, BEATS, skip_frames=100) == pytest.approx(1.0)


def test_bas_variants_differ_in_what_they_average():
    """Extra music beats lower only the Bailando score; extra motion beats would lower only FACT's."""
    joints = _dance_with_speed_minima(BEATS)
    dense_music = np.sort(np.concatenate([BEATS, BEATS + PERIOD // 2]))
    assert beat_align_score_bailando(joints, dense_music) == pytest.approx(0.5, abs=1e-4)
    joints_fact = _dance_with_speed_minima(BEATS - 1)
    assert beat_align_score_fact(joints_fact, dense_music) == pytest.approx(1.0)


def test_bas_errors():
    joints = _dance_with_speed_minima(BEATS)
    with pytest.raises(ValueError, match="no music beat"):
        beat_align_score_bailando(joints, [T_BEAT + 5])
    with pytest.raises(ValueError, match="boolean"):
        beat_align_score_fact(joints, np.zeros(T_BEAT, dtype=bool))
    still = np.zeros((50, 24, 3))
    assert beat_align_score_fact(still, [10, 20]) == 0.0


# ----------------------------------------------------------------------------------------------------------------------
# torchmetrics wrappers
# ----------------------------------------------------------------------------------------------------------------------
def test_dance_quality_metric_matches_functional_core():
    rng = np.random.default_rng(7)
    gt = [_random_dance(rng, T) for T in (40, 55, 47, 60, 38, 52, 44, 49)]
    pred = [_random_dance(rng, T) * 1.1 for T in (45, 39, 58, 41, 50)]

    metric = DanceQualityMetric(fps=FPS)
    metric.update(pred[:2], target=gt[:5])
    metric.update([torch.tensor(p) for p in pred[2:]], target=gt[5:])
    out = metric.compute()

    gk, pk = normalize_by(np.stack([kinetic_features(g) for g in gt]), np.stack([kinetic_features(p) for p in pred]))
    gg, pg = normalize_by(np.stack([geometric_features(g) for g in gt]),
                          np.stack([geometric_features(p) for p in pred]))
    np.testing.assert_allclose(out["FID_k"].item(), frechet_distance(pk, gk), rtol=1e-8)
    np.testing.assert_allclose(out["FID_g"].item(), frechet_distance(pg, gg), rtol=1e-8)
    np.testing.assert_allclose(out["Div_k"].item(), diversity(pk), rtol=1e-8)
    np.testing.assert_allclose(out["Div_g"].item(), diversity(pg), rtol=1e-8)

    # the ground truth against itself: FID ~ 0; padded batch + lengths and precomputed features give the same
    same = DanceQualityMetric(fps=FPS)
    padded = np.zeros((len(gt), 60, 24, 3))
    for i, g in enumerate(gt):
        padded[i, : len(g)] = g
    same.update(torch.tensor(padded), pred_lengths=[len(g) for g in gt])
    same.update_target_features(np.stack([kinetic_features(g) for g in gt]),
                                np.stack([geometric_features(g) for g in gt]))
    res = same.compute()
    # normalised features have unit variance per dimension, so the scale is the dimension (72 / 32)
    assert abs(res["FID_k"].item()) < 72 * 1e-6 and abs(res["FID_g"].item()) < 32 * 1e-6
    assert res["Div_k"].item() > 1
    with pytest.raises(ValueError, match="ground-truth"):
        empty = DanceQualityMetric(fps=FPS)
        empty.update(gt[:3])
        empty.compute()


_BAILANDO = Path(__file__).resolve().parents[1] / "fixtures" / "dance_bailando"


@pytest.fixture(scope="module")
def bailando_fixture() -> tuple[np.ndarray, np.ndarray, dict]:
    """Inputs and outputs of Bailando's own ``metrics_new.py`` (provenance: ``tests/fixtures/dance_bailando``)."""
    inputs = np.load(_BAILANDO / "inputs.npz")
    q = float(inputs["quant"])
    ref = np.load(_BAILANDO / "bailando_metrics.npz")
    return inputs["gt_q"] * q, inputs["pred_q"] * q, {k: ref[k] for k in ref.files}


def test_features_match_bailando_code(bailando_fixture):
    gt, pred, ref = bailando_fixture
    for name, clips in (("gt", gt), ("pred", pred)):
        k = np.stack([kinetic_features(c, fps=FPS) for c in clips])
        g = np.stack([geometric_features(c) for c in clips])
        # the reference stores float32 features
        np.testing.assert_allclose(k, ref[f"{name}_kinetic"], rtol=2e-7)
        np.testing.assert_allclose(g, ref[f"{name}_manual"], atol=1e-7)
        corrected = np.stack([kinetic_features(c, fps=FPS, energy_term="second_difference") for c in clips])
        assert not np.allclose(corrected[:, 2::3], ref[f"{name}_kinetic"][:, 2::3], rtol=0.1)


def test_dance_quality_matches_bailando_quantized_metrics(bailando_fixture):
    gt, pred, ref = bailando_fixture
    metric = DanceQualityMetric(fps=FPS)
    metric.update(list(pred), target=list(gt))
    out = {k: v.item() for k, v in metric.compute().items()}
    for ours, theirs in (("FID_k", "fid_k"), ("Div_k", "div_k"), ("FID_g", "fid_m"), ("Div_g", "div_m")):
        np.testing.assert_allclose(out[ours], ref[theirs], rtol=1e-5, err_msg=ours)
    np.testing.assert_allclose(diversity(normalize_by(np.stack([kinetic_features(c) for c in gt]))[0]),
                               ref["div_k_gt"], rtol=1e-5)
    # the corrected energy term is a different metric on the same clips (55.2 vs 1285)
    fixed = DanceQualityMetric(fps=FPS, energy_term="second_difference")
    fixed.update(list(pred), target=list(gt))
    assert fixed.compute()["FID_k"].item() > 10 * out["FID_k"]


def test_beat_align_metric_means_both_variants():
    metric = BeatAlignMetric(fps=FPS)
    j1, j2 = _dance_with_speed_minima(BEATS), _dance_with_speed_minima(BEATS - 1)
    metric.update(torch.tensor(np.stack([j1, j2])), [BEATS, BEATS])
    metric.update([j1], [BEATS + 3])
    out = metric.compute()
    ref_b = np.mean([beat_align_score_bailando(j, b) for j, b in ((j1, BEATS), (j2, BEATS), (j1, BEATS + 3))])
    ref_f = np.mean([beat_align_score_fact(j, b) for j, b in ((j1, BEATS), (j2, BEATS), (j1, BEATS + 3))])
    np.testing.assert_allclose(out["BAS_bailando"].item(), ref_b, rtol=1e-12)
    np.testing.assert_allclose(out["BAS_fact"].item(), ref_f, rtol=1e-12)
    with pytest.raises(ValueError, match="music-beat arrays"):
        metric.update([j1, j2], [BEATS])
