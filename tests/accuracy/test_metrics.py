"""Accuracy metrics: hand-computed values, invariances, boundary cases and input checks."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from faceperf.accuracy.metrics import (
    AU_COUNT,
    EMOTION_COUNT,
    au_deltas,
    auc,
    decided_emotion_agreement,
    emotion_agreement,
    failure_rate,
    gaze_angle_deg,
    iou_matrix,
    landmark_summary,
    match_detections,
    nme,
    psnr_db,
    snr_db,
)

HYPOTHESIS = settings(derandomize=True, database=None, deadline=None, max_examples=60)
SEEDS = st.integers(0, 2**32 - 1)


# --- snr / psnr ---------------------------------------------------------------------------------


@st.composite
def _signal_and_noise(draw):
    """A signal and a noise direction, both with some energy, and two noise scales, the second
    larger."""
    n = draw(st.integers(1, 40))
    signal = draw(arrays(np.float64, n, elements=st.floats(-10, 10)))
    direction = draw(arrays(np.float64, n, elements=st.floats(-1, 1)))
    direction[draw(st.integers(0, n - 1))] = draw(st.sampled_from([-1.0, 1.0]))
    # Some signal energy too: squares of values near 1e-300 underflow to 0 (an SNR of -inf).
    signal[draw(st.integers(0, n - 1))] = draw(st.floats(1.0, 10.0))
    small = draw(st.floats(1e-3, 10))
    # A factor well above 1, so float rounding of ref + noise cannot reorder the two.
    large = small * draw(st.floats(1.5, 10))
    return signal, direction, small, large


@HYPOTHESIS
@given(arrays(np.float64, st.integers(1, 30), elements=st.floats(-100, 100)))
def test_snr_and_psnr_are_infinite_for_identical_arrays(signal):
    assert snr_db(signal, signal.copy()) == math.inf
    assert psnr_db(signal, signal.copy(), peak=1.0) == math.inf
    if np.any(signal != 0):
        assert psnr_db(signal, signal.copy()) == math.inf


@HYPOTHESIS
@given(_signal_and_noise())
def test_snr_and_psnr_decrease_as_noise_grows(case):
    signal, direction, small, large = case
    quiet, loud = signal + small * direction, signal + large * direction
    assert snr_db(signal, quiet) > snr_db(signal, loud)
    assert psnr_db(signal, quiet) > psnr_db(signal, loud)
    assert psnr_db(signal, quiet, peak=255.0) > psnr_db(signal, loud, peak=255.0)


def test_snr_and_psnr_hand_computed():
    # Signal energy 25, noise energy 0.25: a ratio of 100 is 20 dB.
    assert snr_db([3.0, 4.0], [3.0, 4.5]) == pytest.approx(20.0)
    # Peak max|ref| = 2, MSE = (0 + 1) / 2: 10·log10(4 / 0.5).
    assert psnr_db([0.0, -2.0], [0.0, -1.0]) == pytest.approx(10 * math.log10(8.0))
    # 8-bit image convention: one grey level off everywhere is 48.13 dB.
    ref = np.full((4, 4), 100.0)
    assert psnr_db(ref, ref + 1, peak=255.0) == pytest.approx(20 * math.log10(255.0))
    assert snr_db([0.0, 0.0], [0.0, 1.0]) == -math.inf


def test_psnr_needs_a_peak():
    with pytest.raises(ValueError, match="all zero"):
        psnr_db([0.0, 0.0], [0.0, 1.0])
    for peak in (0.0, -1.0, math.nan, math.inf):
        with pytest.raises(ValueError, match="peak"):
            psnr_db([1.0], [2.0], peak=peak)


# --- NME, FR, AUC -------------------------------------------------------------------------------


def _faces(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Random (n, 98, 2) truth and pred shapes, the eye corners at least 20 px apart."""
    rng = np.random.default_rng(seed)
    truth = rng.uniform(0, 200, (n, 98, 2))
    truth[:, 60] = rng.uniform(0, 50, (n, 2))
    truth[:, 72] = truth[:, 60] + rng.uniform(20, 100, (n, 2))
    pred = truth + rng.normal(0, 5, (n, 98, 2))
    return pred, truth


@HYPOTHESIS
@given(
    SEEDS,
    st.integers(1, 5),
    arrays(np.float64, 2, elements=st.floats(-1e3, 1e3)),
    st.floats(1e-3, 1e3),
)
def test_nme_is_invariant_to_translating_and_scaling_both_shapes(seed, n, shift, scale):
    pred, truth = _faces(seed, n)
    expected = nme(pred, truth)
    assert expected.shape == (n,)
    np.testing.assert_allclose(nme(pred + shift, truth + shift), expected, rtol=1e-9)
    np.testing.assert_allclose(nme(pred * scale, truth * scale), expected, rtol=1e-9)


@HYPOTHESIS
@given(SEEDS, st.integers(1, 5))
def test_nme_is_zero_for_identical_shapes(seed, n):
    _, truth = _faces(seed, n)
    np.testing.assert_array_equal(nme(truth, truth.copy()), np.zeros(n))


def test_nme_hand_computed():
    truth = np.zeros((98, 2))
    truth[72] = (10.0, 0.0)  # inter-ocular distance 10
    # Every point off by (3, 4): error 5 everywhere, NME 5 / 10.
    np.testing.assert_allclose(nme(truth + np.array([3.0, 4.0]), truth), [0.5])
    # One point off by 9.8: mean error 9.8 / 98 = 0.1, NME 0.01.
    pred = truth.copy()
    pred[10] += (0.0, 9.8)
    np.testing.assert_allclose(nme(pred, truth), [0.01])
    # Another normaliser: points 0 and 72 are also 10 apart, points 0 and 1 are not.
    np.testing.assert_allclose(nme(pred, truth, left=0, right=72), [0.01])
    with pytest.raises(ValueError, match="coincide for face"):
        nme(pred, truth, left=0, right=1)


def test_nme_checks_its_input():
    _, truth = _faces(0, 3)
    with pytest.raises(ValueError, match="shapes differ"):
        nme(truth[:2], truth)
    with pytest.raises(ValueError, match=r"expected \(N, P, 2\)"):
        nme(truth[..., :1], truth[..., :1])
    with pytest.raises(ValueError, match="right is 98"):
        nme(truth, truth, right=98)
    with pytest.raises(ValueError, match="both 60"):
        nme(truth, truth, left=60, right=60)
    collapsed = truth.copy()
    collapsed[1, 72] = collapsed[1, 60]
    with pytest.raises(ValueError, match=r"face\(s\) \[1\]"):
        nme(truth, collapsed)


def test_failure_rate_boundaries():
    assert failure_rate([0.0, 0.05]) == 0.0
    # Exactly at the threshold is not a failure; just above is.
    assert failure_rate([0.10]) == 0.0
    assert failure_rate([np.nextafter(0.10, 1.0)]) == 1.0
    assert failure_rate([0.05, 0.2, 0.3, 0.0]) == 0.5
    assert failure_rate([0.05, 0.2, 0.3, 0.0], threshold=0.25) == 0.25


def test_auc_boundaries():
    assert auc(np.zeros(7)) == 1.0
    assert auc([0.1, 0.2, 5.0]) == 0.0
    # One face at half the threshold: CED is 0 then 1, half the area.
    assert auc([0.05]) == pytest.approx(0.5)
    assert auc([0.0, 0.1]) == pytest.approx(0.5)
    assert auc([0.02], threshold=0.08) == pytest.approx(0.75)
    # The sampled integral: exact for a CED that is flat over the range.
    assert auc(np.zeros(3), steps=100) == pytest.approx(1.0)
    assert auc([0.2, 0.3], steps=100) == 0.0


@HYPOTHESIS
@given(
    arrays(np.float64, st.integers(1, 30), elements=st.floats(0, 0.2)),
    st.integers(1, 2000),
)
def test_sampled_auc_approaches_the_exact_one(nmes, steps):
    exact = auc(nmes)
    assert 0.0 <= exact <= 1.0
    assert abs(auc(nmes, steps=steps) - exact) <= 1 / (2 * steps) + 1e-12


@HYPOTHESIS
@given(
    arrays(np.float64, st.integers(1, 30), elements=st.floats(0, 0.2)),
    st.floats(1e-3, 0.1),
)
def test_auc_falls_and_fr_rises_as_errors_grow(nmes, extra):
    worse = nmes + extra
    assert auc(worse) <= auc(nmes)
    assert failure_rate(worse) >= failure_rate(nmes)


def test_fr_and_auc_check_their_input():
    for bad in ([], [[0.1]], [-0.01], [math.nan]):
        with pytest.raises(ValueError, match="nmes"):
            auc(bad)
        with pytest.raises(ValueError, match="nmes"):
            failure_rate(bad)
    with pytest.raises(ValueError, match="threshold"):
        auc([0.1], threshold=0.0)
    for steps in (0, 1.5, True):
        with pytest.raises(ValueError, match="steps"):
            auc([0.1], steps=steps)


def test_landmark_summary_hand_computed():
    truth = np.zeros((4, 98, 2))
    truth[:, 72] = (10.0, 0.0)
    # Uniform offsets of 0, 0.5, 1 and 2 px: NMEs 0, 0.05, 0.1 and 0.2.
    pred = truth + np.array([0.0, 0.5, 1.0, 2.0])[:, None, None] * np.array([1.0, 0.0])
    summary = landmark_summary(pred, truth)
    assert summary.mean_nme == pytest.approx(0.0875)
    assert summary.fr == 0.25
    assert summary.auc == pytest.approx((1.0 + 0.5 + 0.0 + 0.0) / 4)
    with pytest.raises(ValueError, match="no faces"):
        landmark_summary(np.zeros((0, 98, 2)), np.zeros((0, 98, 2)))


# --- IoU and matching ---------------------------------------------------------------------------


@st.composite
def _boxes(draw, min_size=0, max_size=8):
    """Integer-cornered boxes with positive area."""
    n = draw(st.integers(min_size, max_size))
    corners = draw(arrays(np.float64, (n, 2), elements=st.integers(0, 60)))
    sizes = draw(arrays(np.float64, (n, 2), elements=st.integers(1, 30)))
    return np.hstack([corners, corners + sizes])


@HYPOTHESIS
@given(_boxes(), _boxes())
def test_iou_is_symmetric_and_in_unit_range(a, b):
    forward = iou_matrix(a, b)
    assert forward.shape == (len(a), len(b))
    np.testing.assert_array_equal(forward, iou_matrix(b, a).T)
    assert np.all((forward >= 0) & (forward <= 1))


@HYPOTHESIS
@given(_boxes(min_size=1))
def test_iou_of_a_box_with_itself_is_one_and_with_a_disjoint_box_zero(boxes):
    np.testing.assert_allclose(np.diag(iou_matrix(boxes, boxes)), 1.0)
    # Moved right by its own width: the boxes at most share an edge.
    shifted = boxes + (boxes[:, 2:3] - boxes[:, 0:1]) * np.array([1.0, 0.0, 1.0, 0.0])
    np.testing.assert_array_equal(np.diag(iou_matrix(boxes, shifted)), 0.0)


def test_iou_hand_computed_and_edge_cases():
    # Two 2x2 boxes overlapping in a 1x1 square: 1 / (4 + 4 − 1), no "+1 pixel".
    assert iou_matrix([[0, 0, 2, 2]], [[1, 1, 3, 3]])[0, 0] == pytest.approx(1 / 7)
    # Degenerate boxes: no union area, IoU 0 rather than NaN.
    assert iou_matrix([[1, 1, 1, 1]], [[1, 1, 1, 1]])[0, 0] == 0.0
    # A frame without faces.
    assert iou_matrix([], [[0, 0, 1, 1]]).shape == (0, 1)
    with pytest.raises(ValueError, match=r"a rows \[0\] have x2 < x1"):
        iou_matrix([[2, 0, 1, 1]], [[0, 0, 1, 1]])
    with pytest.raises(ValueError, match=r"b has shape \(1, 5\)"):
        iou_matrix([[0, 0, 1, 1]], [[0, 0, 1, 1, 0.9]])


@st.composite
def _faces_and_detections(draw):
    """Reference faces in separate grid cells and predictions jittered from some of them, plus
    stray predictions in empty cells: each prediction overlaps at most one reference."""
    cells = draw(st.permutations(range(16)))
    n_ref = draw(st.integers(0, 6))
    n_found = draw(st.integers(0, n_ref))
    n_stray = draw(st.integers(0, 3))
    origin = np.array([[(c % 4) * 100.0, (c // 4) * 100.0] for c in cells], np.float64)
    ref = np.hstack([origin[:n_ref] + 10, origin[:n_ref] + 60])
    # Up to 4 px on 50 px boxes keeps IoU >= 0.7 (42² / 50² in the worst, shrunken case).
    jitter = draw(arrays(np.float64, (n_found, 4), elements=st.integers(-4, 4)))
    found = ref[:n_found] + jitter
    stray_origin = origin[n_ref : n_ref + n_stray]
    stray = np.hstack([stray_origin + 10, stray_origin + 60]).reshape(-1, 4)
    return np.vstack([found, stray]).reshape(-1, 4), ref.reshape(-1, 4), n_found, n_stray


@HYPOTHESIS
@given(_faces_and_detections(), st.randoms(use_true_random=False))
def test_matching_does_not_depend_on_the_order_of_predictions(case, rnd):
    pred, ref, n_found, n_stray = case
    order = list(range(len(pred)))
    rnd.shuffle(order)
    plain = match_detections(pred, ref)
    shuffled = match_detections(pred[order], ref)
    np.testing.assert_allclose(np.sort(shuffled.ious), np.sort(plain.ious))
    # Pairs agree once predictions are mapped back to their original index.
    assert sorted((order[p], r) for p, r in shuffled.pairs) == sorted(plain.pairs)
    assert shuffled.agreement == plain.agreement
    assert len(plain.pairs) == n_found
    assert len(plain.unmatched_pred) == n_stray
    assert plain.unmatched_ref == tuple(range(n_found, len(ref)))


@HYPOTHESIS
@given(_boxes(), _boxes(), st.randoms(use_true_random=False), st.floats(0.05, 1.0))
def test_matching_objective_is_order_free_on_any_boxes(pred, ref, rnd, threshold):
    # Overlapping faces can have several optimal matchings; what they share is the pair count
    # and the total IoU, which is what the assignment maximises.
    order = list(range(len(pred)))
    rnd.shuffle(order)
    plain = match_detections(pred, ref, min_iou=threshold)
    shuffled = match_detections(pred[order], ref, min_iou=threshold)
    assert len(shuffled.pairs) == len(plain.pairs)
    assert shuffled.ious.sum() == pytest.approx(plain.ious.sum(), abs=1e-9)
    assert np.all(plain.ious >= threshold)
    assert len(plain.pairs) + len(plain.unmatched_pred) == len(pred)
    assert len(plain.pairs) + len(plain.unmatched_ref) == len(ref)


@HYPOTHESIS
@given(_boxes(min_size=1).map(lambda b: np.unique(b, axis=0)), st.randoms(use_true_random=False))
def test_matching_a_shuffled_copy_finds_the_identity(ref, rnd):
    order = list(range(len(ref)))
    rnd.shuffle(order)
    match = match_detections(ref[order], ref)
    assert match.pairs == tuple((i, order[i]) for i in range(len(ref)))
    np.testing.assert_allclose(match.ious, 1.0)
    assert match.agreement
    assert match.mean_iou == pytest.approx(1.0)
    assert match.min_iou == pytest.approx(1.0)
    assert match.unmatched_pred == match.unmatched_ref == ()


def test_matching_reports_extra_missing_and_poor_boxes():
    ref = np.array([[0, 0, 10, 10], [100, 100, 150, 150]], np.float64)
    extra = np.array([[300, 300, 320, 320]], np.float64)
    match = match_detections(np.vstack([extra, ref]), ref)
    assert match.pairs == ((1, 0), (2, 1))
    assert match.unmatched_pred == (0,)
    assert match.unmatched_ref == ()
    assert not match.agreement
    missing = match_detections(ref[1:], ref)
    assert missing.pairs == ((0, 1),) and missing.unmatched_ref == (0,)
    # A 10x5 box inside a 10x10 one: IoU 0.5 matches at min_iou 0.5, not at 0.6.
    half = np.array([[0, 0, 10, 5]], np.float64)
    assert match_detections(half, ref[:1]).pairs == ((0, 0),)
    poor = match_detections(half, ref[:1], min_iou=0.6)
    assert poor.pairs == () and poor.unmatched_pred == (0,) and poor.unmatched_ref == (0,)
    assert poor.mean_iou == poor.min_iou == 0.0
    assert poor.ious.shape == (0,)


def test_matching_prefers_more_pairs_over_one_better_pair():
    # 1-D layout (every box spans y 0..1). A fits X at 0.9 and Y at 3/9; B fits X at 6/16 and Y
    # below 0.3. Maximising total IoU alone would keep A-X (0.9 > 0.33 + 0.375) and leave B and Y
    # unmatched although both could have a partner.
    def box(x1, x2):
        return [x1, 0.0, x2, 1.0]

    pred = np.array([box(0, 9), box(-6, 6)])
    ref = np.array([box(0, 10), box(0, 3)])
    match = match_detections(pred, ref, min_iou=0.3)
    assert match.pairs == ((0, 1), (1, 0))
    np.testing.assert_allclose(match.ious, [1 / 3, 6 / 16])
    assert match.agreement


def test_matching_without_any_box_agrees():
    match = match_detections(np.zeros((0, 4)), [])
    assert match.agreement and match.pairs == ()
    assert match.mean_iou == match.min_iou == 1.0
    with pytest.raises(ValueError, match="min_iou"):
        match_detections([], [], min_iou=0.0)


def test_match_results_are_read_only():
    match = match_detections([[0, 0, 1, 1]], [[0, 0, 1, 1]])
    with pytest.raises(ValueError, match="read-only"):
        match.ious[0] = 0.0


# --- action units, gaze, emotion ----------------------------------------------------------------


def test_au_deltas_hand_computed():
    ref = np.zeros((2, 8))
    cand = np.zeros((2, 8))
    cand[0, 0], cand[1, 0] = 0.2, -0.4  # AU01: |0.2| and |-0.4|, mean 0.3
    cand[1, 7] = 0.8  # AU25: 0 and 0.8, mean 0.4
    delta = au_deltas(ref, cand)
    np.testing.assert_allclose(delta.per_au, [0.3, 0, 0, 0, 0, 0, 0, 0.4])
    assert delta.mean_abs == pytest.approx((0.2 + 0.4 + 0.8) / 16)
    assert delta.max_abs == pytest.approx(0.8)
    # A single face, and the order of the arguments does not matter.
    single = au_deltas(cand[1], ref[1])
    assert single.max_abs == pytest.approx(0.8)
    assert single.per_au.shape == (8,)
    with pytest.raises(ValueError, match="read-only"):
        delta.per_au[0] = 1.0


def test_au_deltas_checks_shapes():
    with pytest.raises(ValueError, match=r"expected \(N, 8\)"):
        au_deltas(np.zeros((2, 7)), np.zeros((2, 7)))
    with pytest.raises(ValueError, match="shapes differ"):
        au_deltas(np.zeros((2, 8)), np.zeros((3, 8)))
    with pytest.raises(ValueError, match="no rows"):
        au_deltas(np.zeros((0, 8)), np.zeros((0, 8)))


ANGLES = st.floats(-1.5, 1.5)  # radians, pitch within (−π/2, π/2)


@HYPOTHESIS
@given(arrays(np.float64, (5, 2), elements=ANGLES), arrays(np.float64, (5, 2), elements=ANGLES))
def test_gaze_angle_is_zero_for_identical_and_symmetric(a, b):
    np.testing.assert_allclose(gaze_angle_deg(a, a.copy()), 0.0, atol=1e-5)
    forward = gaze_angle_deg(a, b)
    np.testing.assert_allclose(forward, gaze_angle_deg(b, a), atol=1e-9)
    assert np.all((forward >= 0) & (forward <= 180))


@HYPOTHESIS
@given(st.floats(-3.0, 3.0), st.floats(-3.0, 3.0), ANGLES)
def test_a_pure_yaw_change_is_its_own_size_at_zero_pitch(yaw, change, pitch):
    level = gaze_angle_deg([yaw, 0.0], [yaw + change, 0.0])
    np.testing.assert_allclose(level, [math.degrees(abs(change))], atol=1e-5)
    # Away from the horizon the same yaw change turns the gaze less: a chord of a smaller circle.
    tilted = gaze_angle_deg([yaw, pitch], [yaw + change, pitch])
    expected = 2 * math.asin(math.cos(pitch) * abs(math.sin(change / 2)))
    np.testing.assert_allclose(tilted, [math.degrees(expected)], atol=1e-5)


@HYPOTHESIS
@given(st.floats(-3.0, 3.0), ANGLES, ANGLES)
def test_a_pure_pitch_change_is_its_own_size(yaw, pitch, other):
    angle = gaze_angle_deg([yaw, pitch], [yaw, other])
    np.testing.assert_allclose(angle, [math.degrees(abs(other - pitch))], atol=1e-5)


def test_gaze_angle_hand_computed():
    ref = np.array([[0.0, 0.0], [0.0, 0.0], [0.3, 0.2]])
    cand = np.array([[math.pi / 2, 0.0], [math.pi, 0.0], [0.3, 0.2]])
    np.testing.assert_allclose(gaze_angle_deg(ref, cand), [90.0, 180.0, 0.0], atol=1e-5)


def _quarters(limit: int) -> st.SearchStrategy[float]:
    """Multiples of 1/4 up to ``limit``: their sums are exact, so ties survive a shift."""
    return st.integers(-4 * limit, 4 * limit).map(lambda v: v / 4)


@HYPOTHESIS
@given(st.integers(1, 10), st.data())
def test_emotion_agreement_ignores_per_row_constants(n, data):
    logits = data.draw(arrays(np.float64, (n, 8), elements=_quarters(10)))
    other = data.draw(arrays(np.float64, (n, 8), elements=_quarters(10)))
    shift = data.draw(arrays(np.float64, (n, 1), elements=_quarters(100)))
    assert emotion_agreement(logits, logits.copy()) == 1.0
    assert emotion_agreement(logits, logits + shift) == 1.0
    assert emotion_agreement(logits, other) == emotion_agreement(logits, other + shift)


def test_emotion_agreement_hand_computed():
    ref = np.eye(8)[[0, 1, 2, 3]]
    cand = np.eye(8)[[0, 1, 2, 4]]
    assert emotion_agreement(ref, cand) == 0.75
    # Probabilities have the same argmax as their logits.
    probs = np.exp(cand) / np.exp(cand).sum(axis=1, keepdims=True)
    assert emotion_agreement(ref, probs) == 0.75
    assert emotion_agreement(ref[0], cand[0]) == 1.0


# --- shared input checks ------------------------------------------------------------------------


def _with_nan(array: np.ndarray) -> np.ndarray:
    broken = np.array(array, np.float64)
    broken.flat[0] = math.nan
    return broken


@pytest.mark.parametrize(
    ("function", "shape"),
    [
        (snr_db, (3,)),
        (psnr_db, (3,)),
        (nme, (98, 2)),
        (au_deltas, (2, 8)),
        (gaze_angle_deg, (2, 2)),
        (emotion_agreement, (2, 8)),
        (iou_matrix, (2, 4)),
        (match_detections, (2, 4)),
    ],
)
def test_every_metric_refuses_nan_and_inf_by_name(function, shape):
    clean = np.ones(shape)
    clean[..., -1] = 2.0  # boxes with x2 > x1 and y2 > y1, distinct landmark points
    if function is nme:
        clean[72] = (5.0, 9.0)
    with pytest.raises(ValueError, match="NaN or inf"):
        function(clean, _with_nan(clean))
    infinite = clean.copy()
    infinite.flat[-1] = math.inf
    with pytest.raises(ValueError, match=r"^\w+ has 1 NaN or inf values, expected finite"):
        function(infinite, clean)


def test_snr_and_psnr_refuse_mismatched_and_empty_arrays():
    with pytest.raises(ValueError, match=r"shapes differ: reference \(2,\), candidate \(3,\)"):
        snr_db(np.zeros(2), np.zeros(3))
    with pytest.raises(ValueError, match="empty"):
        psnr_db([], [], peak=1.0)


def test_head_widths_match_the_model():
    from faceperf.models.mtl import AU_NAMES, EMOTION_NAMES

    assert (len(AU_NAMES), len(EMOTION_NAMES)) == (AU_COUNT, EMOTION_COUNT)


def test_emotion_agreement_counts_only_the_faces_the_reference_decides():
    reference = np.full((3, 8), 0.02)
    reference[0, 0], reference[0, 1] = 0.80, 0.06  # decided: class 0
    reference[1, 2], reference[1, 3] = 0.44, 0.42  # undecided: may flip
    reference[2, 4], reference[2, 5] = 0.70, 0.18  # decided: class 4
    candidate = reference.copy()
    candidate[1, [2, 3]] = candidate[1, [3, 2]]  # the undecided face flips
    assert decided_emotion_agreement(reference, candidate, 0.05) == 1.0
    candidate[2, [4, 5]] = candidate[2, [5, 4]]  # a decided face flips
    assert decided_emotion_agreement(reference, candidate, 0.05) == 0.5
    assert decided_emotion_agreement(reference, candidate, 0.9) == 1.0  # none decided
