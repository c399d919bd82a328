"""Accuracy metrics shared by the tests, the accuracy suite and the CLI.

Every function takes NumPy arrays (or anything ``np.asarray`` accepts), computes in float64 and
raises ValueError, naming the argument, on a wrong shape or a NaN / inf: a broken artifact that
emits NaN must fail loudly rather than turn into a NaN score that every ``>=`` check rejects
without saying why.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from faceperf.pipeline.boxes import overlap_matrix

# Widths of the MTL heads (faceperf.models.mtl.AU_NAMES / EMOTION_NAMES; not imported from
# there because that module pulls in torch).
AU_COUNT = 8
EMOTION_COUNT = 8
# WFLW's outer eye corners: the inter-ocular normaliser of STAR's NME.
WFLW_LEFT_EYE_CORNER = 60
WFLW_RIGHT_EYE_CORNER = 72
# FR@10 and AUC@10: a face whose NME exceeds 10 % of the inter-ocular distance is a failure.
DEFAULT_NME_THRESHOLD = 0.10


# --- validation ---------------------------------------------------------------------------------


def _finite(name: str, value: object) -> np.ndarray:
    """``value`` as a float64 array, refusing NaN and inf.

    Args:
        name: the argument's name, for the message.
        value: array-like.
    """
    array = np.asarray(value, np.float64)
    bad = int(np.count_nonzero(~np.isfinite(array)))
    if bad:
        raise ValueError(f"{name} has {bad} NaN or inf values, expected finite numbers")
    return array


def _pair(reference: object, candidate: object) -> tuple[np.ndarray, np.ndarray]:
    """Two finite, non-empty float64 arrays of the same shape.

    Args:
        reference: array-like.
        candidate: array-like of the reference's shape.
    """
    ref = _finite("reference", reference)
    cand = _finite("candidate", candidate)
    if ref.shape != cand.shape:
        raise ValueError(f"shapes differ: reference {ref.shape}, candidate {cand.shape}")
    if ref.size == 0:
        raise ValueError(f"reference is empty (shape {ref.shape}), expected at least one value")
    return ref, cand


def _rows(name: str, value: object, width: int) -> np.ndarray:
    """A finite (N, width) float64 array; a single (width,) row becomes (1, width).

    Args:
        name: the argument's name, for the message.
        value: array-like of shape (N, width) or (width,).
        width: the expected number of columns.
    """
    array = _finite(name, value)
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2 or array.shape[1] != width:
        raise ValueError(f"{name} has shape {array.shape}, expected (N, {width}) or ({width},)")
    if array.shape[0] == 0:
        raise ValueError(f"{name} has no rows (shape {array.shape}), expected at least one")
    return array


def _row_pair(
    names: tuple[str, str], reference: object, candidate: object, width: int
) -> tuple[np.ndarray, np.ndarray]:
    """Two (N, width) arrays with the same N.

    Args:
        names: the two arguments' names, for the messages.
        reference: array-like of shape (N, width) or (width,).
        candidate: the same.
        width: the expected number of columns.
    """
    ref = _rows(names[0], reference, width)
    cand = _rows(names[1], candidate, width)
    if ref.shape != cand.shape:
        raise ValueError(f"shapes differ: {names[0]} {ref.shape}, {names[1]} {cand.shape}")
    return ref, cand


def _read_only(array: np.ndarray) -> np.ndarray:
    """``array`` marked read-only, so a frozen result stays frozen.

    Args:
        array: a freshly computed array (not a view of the caller's data).
    """
    array.setflags(write=False)
    return array


# --- signal fidelity ----------------------------------------------------------------------------


def snr_db(reference: np.ndarray, candidate: np.ndarray) -> float:
    """Signal-to-noise ratio of ``candidate`` against ``reference`` in dB (inf when equal).

    10·log10(Σ ref² / Σ (ref − cand)²), in float64. 40 dB means the error's energy is 1/10,000
    of the signal's (about 1 % RMS); FP16 rounding alone gives about 60 dB on a well-conditioned
    network. An all-zero reference with a non-zero candidate gives -inf.

    Args:
        reference: the trusted output.
        candidate: the output under test, same shape.
    """
    ref, cand = _pair(reference, candidate)
    noise = float(np.sum((ref - cand) ** 2))
    signal = float(np.sum(ref**2))
    if noise == 0.0:
        return float("inf")
    if signal == 0.0:
        return float("-inf")
    return 10.0 * float(np.log10(signal / noise))


def psnr_db(reference: np.ndarray, candidate: np.ndarray, peak: float | None = None) -> float:
    """Peak signal-to-noise ratio in dB: 10·log10(peak² / mean (ref − cand)²), inf when equal.

    Args:
        reference: the trusted output.
        candidate: the output under test, same shape.
        peak: the largest meaningful magnitude (255 for 8-bit images); defaults to max |reference|.
    """
    ref, cand = _pair(reference, candidate)
    if peak is None:
        peak = float(np.max(np.abs(ref)))
        if peak == 0.0:
            raise ValueError("reference is all zero, so it has no peak; pass peak explicitly")
    elif not (np.isfinite(peak) and peak > 0.0):
        raise ValueError(f"peak is {peak}, expected a finite number > 0")
    mse = float(np.mean((ref - cand) ** 2))
    if mse == 0.0:
        return float("inf")
    return 10.0 * float(np.log10(float(peak) ** 2 / mse))


# --- landmarks ----------------------------------------------------------------------------------


def _threshold(threshold: float) -> float:
    """``threshold`` if it is a finite number > 0.

    Args:
        threshold: an NME threshold (a fraction of the inter-ocular distance).
    """
    if not (np.isfinite(threshold) and threshold > 0.0):
        raise ValueError(f"threshold is {threshold}, expected a finite number > 0")
    return float(threshold)


def _nmes(nmes: object) -> np.ndarray:
    """A non-empty, finite, non-negative 1-D array of per-face NMEs.

    Args:
        nmes: array-like of shape (N,), as ``nme`` returns.
    """
    values = _finite("nmes", nmes)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"nmes has shape {values.shape}, expected (N,) with N >= 1")
    if np.any(values < 0.0):
        raise ValueError(f"nmes has a negative value ({values.min()}), expected errors >= 0")
    return values


def nme(
    pred: np.ndarray,
    truth: np.ndarray,
    left: int = WFLW_LEFT_EYE_CORNER,
    right: int = WFLW_RIGHT_EYE_CORNER,
) -> np.ndarray:
    """Per-face normalised mean error: mean point-to-point distance / inter-ocular distance.

    The normaliser is ||truth[left] − truth[right]|| (WFLW's outer eye corners by default), so
    the result is a fraction: STAR's 4.02 % on WFLW is 0.0402 here.

    Args:
        pred: predicted landmarks, (N, P, 2) or one face (P, 2).
        truth: reference landmarks of the same shape.
        left: index of the first normalising point.
        right: index of the second normalising point.

    Returns:
        (N,) NMEs; a single face gives shape (1,).
    """
    p = _finite("pred", pred)
    t = _finite("truth", truth)
    if p.shape != t.shape:
        raise ValueError(f"shapes differ: pred {p.shape}, truth {t.shape}")
    if p.ndim == 2:
        p, t = p[None], t[None]
    if p.ndim != 3 or p.shape[2] != 2:
        raise ValueError(f"pred has shape {p.shape}, expected (N, P, 2) or (P, 2)")
    points = p.shape[1]
    for name, index in (("left", left), ("right", right)):
        if not 0 <= index < points:
            raise ValueError(f"{name} is {index}, expected a point index in [0, {points})")
    if left == right:
        raise ValueError(f"left and right are both {left}, expected two different points")
    normaliser = np.linalg.norm(t[:, left] - t[:, right], axis=-1)
    zero = np.flatnonzero(normaliser == 0.0)
    if zero.size:
        raise ValueError(
            f"truth points {left} and {right} coincide for face(s) {zero.tolist()}, "
            "expected a non-zero inter-ocular distance"
        )
    return np.linalg.norm(p - t, axis=-1).mean(axis=1) / normaliser


def failure_rate(nmes: np.ndarray, threshold: float = DEFAULT_NME_THRESHOLD) -> float:
    """Share of faces whose NME exceeds ``threshold`` (FR@10 for 0.10), as a fraction in [0, 1].

    An NME exactly at the threshold is not a failure. Papers print the fraction as a percentage
    (STAR's FR@10 of 2.32 % is 0.0232 here).

    Args:
        nmes: (N,) per-face NMEs.
        threshold: the failure threshold, a fraction of the inter-ocular distance.
    """
    values = _nmes(nmes)
    return float(np.mean(values > _threshold(threshold)))


def auc(
    nmes: np.ndarray, threshold: float = DEFAULT_NME_THRESHOLD, steps: int | None = None
) -> float:
    """Area under the cumulative error distribution up to ``threshold``, normalised to [0, 1].

    CED(e) is the share of faces with NME <= e; AUC = (1/threshold)·∫₀^threshold CED(e) de.
    All-zero errors give 1.0, errors all >= threshold give 0.0.

    Args:
        nmes: (N,) per-face NMEs.
        threshold: the upper limit of integration (AUC@10 for 0.10).
        steps: None for the exact integral, which for a step-shaped CED is
            mean(max(0, 1 − nme/threshold)); an int integrates CED sampled at ``steps`` + 1
            evenly spaced points with the trapezoid rule, as evaluation scripts do. The two differ
            by at most 1/(2·steps).
    """
    values = _nmes(nmes)
    limit = _threshold(threshold)
    if steps is None:
        return float(np.mean(np.clip(1.0 - values / limit, 0.0, 1.0)))
    if isinstance(steps, bool) or not isinstance(steps, int | np.integer) or steps < 1:
        raise ValueError(f"steps is {steps!r}, expected None or an int >= 1")
    grid = np.linspace(0.0, limit, int(steps) + 1)
    ced = np.mean(values[None, :] <= grid[:, None], axis=1)
    return float(np.trapezoid(ced, grid) / limit)


@dataclass(frozen=True)
class LandmarkSummary:
    """WFLW-style landmark accuracy of a set of faces; all three are fractions."""

    mean_nme: float  # mean of the per-face NMEs
    fr: float  # share of faces with NME > threshold
    auc: float  # normalised area under the CED up to threshold


def landmark_summary(
    pred: np.ndarray,
    truth: np.ndarray,
    threshold: float = DEFAULT_NME_THRESHOLD,
    left: int = WFLW_LEFT_EYE_CORNER,
    right: int = WFLW_RIGHT_EYE_CORNER,
) -> LandmarkSummary:
    """Mean NME, FR and (exact) AUC of ``pred`` against ``truth``.

    Args:
        pred: predicted landmarks, (N, P, 2) or (P, 2).
        truth: reference landmarks of the same shape.
        threshold: the FR / AUC threshold.
        left: index of the first normalising point.
        right: index of the second normalising point.
    """
    values = nme(pred, truth, left, right)
    if values.size == 0:
        raise ValueError("pred has no faces (N = 0), expected at least one")
    return LandmarkSummary(
        mean_nme=float(np.mean(values)),
        fr=failure_rate(values, threshold),
        auc=auc(values, threshold),
    )


# --- detections ---------------------------------------------------------------------------------


def _boxes(name: str, value: object) -> np.ndarray:
    """A finite (N, 4) [x1, y1, x2, y2] array with x2 >= x1 and y2 >= y1.

    An empty list (shape (0,)) is taken as no boxes, because ``np.asarray([d.box for d in []])``
    is what a frame without faces gives.

    Args:
        name: the argument's name, for the message.
        value: array-like of shape (N, 4).
    """
    boxes = _finite(name, value)
    if boxes.size == 0 and boxes.ndim == 1:
        boxes = boxes.reshape(0, 4)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"{name} has shape {boxes.shape}, expected (N, 4) [x1, y1, x2, y2]")
    inverted = np.flatnonzero((boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1]))
    if inverted.size:
        raise ValueError(
            f"{name} rows {inverted.tolist()} have x2 < x1 or y2 < y1, expected [x1, y1, x2, y2]"
        )
    return boxes


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of every box in ``a`` with every box in ``b``.

    Continuous coordinates: area = (x2 − x1)·(y2 − y1), no "+1 pixel". Two boxes whose union has
    no area (both degenerate) have IoU 0.

    Args:
        a: (N, 4) boxes [x1, y1, x2, y2].
        b: (M, 4) boxes.

    Returns:
        (N, M) IoUs in [0, 1].
    """
    iou = overlap_matrix(_boxes("a", a), _boxes("b", b))
    # Rounding can push inter/union a hair past 1 for identical boxes.
    return np.clip(iou, 0.0, 1.0)


@dataclass(frozen=True, eq=False)
class DetectionMatch:
    """A one-to-one matching of predicted boxes to reference boxes.

    ``mean_iou`` and ``min_iou`` are over the matched pairs only, so read them together with
    ``agreement``. With no pairs they are 1.0 when neither side has a box (nothing to disagree
    about) and 0.0 otherwise (boxes exist and none agree). Equality is identity (``ious`` is an
    array).
    """

    pairs: tuple[tuple[int, int], ...]  # (pred index, ref index), by pred index
    ious: np.ndarray  # (len(pairs),) IoU of each pair, read-only
    unmatched_pred: tuple[int, ...]
    unmatched_ref: tuple[int, ...]
    agreement: bool  # both sides found the same faces: nothing unmatched on either side
    mean_iou: float
    min_iou: float


def match_detections(
    pred_boxes: np.ndarray, ref_boxes: np.ndarray, min_iou: float = 0.5
) -> DetectionMatch:
    """Match predicted to reference boxes one-to-one by IoU (Hungarian assignment).

    Only pairs with IoU >= ``min_iou`` may match. Among the matchings of those, the one with the
    most pairs wins, then the one with the largest total IoU: maximising raw total IoU alone could
    trade one admissible pair for two below-threshold ones that are then thrown away.

    Args:
        pred_boxes: (N, 4) boxes [x1, y1, x2, y2] from the artifact under test.
        ref_boxes: (M, 4) reference boxes.
        min_iou: the smallest IoU that counts as the same face, in (0, 1].
    """
    if not (np.isfinite(min_iou) and 0.0 < min_iou <= 1.0):
        raise ValueError(f"min_iou is {min_iou}, expected a number in (0, 1]")
    iou = iou_matrix(_boxes("pred_boxes", pred_boxes), _boxes("ref_boxes", ref_boxes))
    admissible = iou >= min_iou
    # A bonus larger than any matching's total IoU (at most min(N, M)) makes the pair count
    # dominate; IoU then breaks ties.
    bonus = 1.0 + min(iou.shape)
    rows, cols = linear_sum_assignment(np.where(admissible, bonus + iou, 0.0), maximize=True)
    keep = admissible[rows, cols]
    rows, cols = rows[keep], cols[keep]
    pairs = tuple((int(r), int(c)) for r, c in zip(rows, cols, strict=True))
    ious = _read_only(iou[rows, cols].copy())
    unmatched_pred = tuple(sorted(set(range(iou.shape[0])) - set(rows.tolist())))
    unmatched_ref = tuple(sorted(set(range(iou.shape[1])) - set(cols.tolist())))
    agreement = not unmatched_pred and not unmatched_ref
    if pairs:
        mean, lowest = float(np.mean(ious)), float(np.min(ious))
    else:
        # No pairs and agreement means neither side has a box.
        mean = lowest = 1.0 if agreement else 0.0
    return DetectionMatch(
        pairs=pairs,
        ious=ious,
        unmatched_pred=unmatched_pred,
        unmatched_ref=unmatched_ref,
        agreement=agreement,
        mean_iou=mean,
        min_iou=lowest,
    )


# --- multitask heads ----------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class AUDelta:
    """Absolute differences of action-unit values between two runs.

    Equality is identity (``per_au`` is an array).
    """

    mean_abs: float  # over every face and AU
    max_abs: float  # the worst single value
    per_au: np.ndarray  # (8,) mean over faces, in AU_NAMES order, read-only


def au_deltas(reference: np.ndarray, candidate: np.ndarray) -> AUDelta:
    """Mean, worst and per-AU absolute difference of AU outputs.

    Args:
        reference: (N, 8) or (8,) trusted AU values.
        candidate: the same shape, from the artifact under test.
    """
    ref, cand = _row_pair(("reference", "candidate"), reference, candidate, AU_COUNT)
    delta = np.abs(cand - ref)
    return AUDelta(
        mean_abs=float(np.mean(delta)),
        max_abs=float(np.max(delta)),
        per_au=_read_only(np.mean(delta, axis=0)),
    )


def _gaze_vectors(angles: np.ndarray) -> np.ndarray:
    """Unit 3-D gaze directions from (yaw, pitch) in radians.

    Args:
        angles: (N, 2) yaw, pitch.
    """
    yaw, pitch = angles[:, 0], angles[:, 1]
    return np.stack(
        [np.cos(pitch) * np.sin(yaw), np.sin(pitch), np.cos(pitch) * np.cos(yaw)], axis=-1
    )


def gaze_angle_deg(reference: np.ndarray, candidate: np.ndarray) -> np.ndarray:
    """Angle in degrees between two gaze directions given as (yaw, pitch) in radians.

    Comparing yaw and pitch separately would overstate yaw errors near ±90° pitch, where yaw
    hardly moves the direction; the angle between unit vectors does not.

    Args:
        reference: (N, 2) or (2,) trusted (yaw, pitch).
        candidate: the same shape, from the artifact under test.

    Returns:
        (N,) angles in [0, 180].
    """
    ref, cand = _row_pair(("reference", "candidate"), reference, candidate, 2)
    cosine = np.sum(_gaze_vectors(ref) * _gaze_vectors(cand), axis=-1)
    # Unit vectors' dot product can round past ±1, where arccos is NaN.
    return np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0)))


def emotion_agreement(reference_logits: np.ndarray, candidate_logits: np.ndarray) -> float:
    """Share of faces whose top-1 emotion is the same in both runs, in [0, 1].

    Logits or probabilities both work: softmax keeps the argmax. Ties go to the first class.

    Args:
        reference_logits: (N, 8) or (8,) trusted emotion scores.
        candidate_logits: the same shape, from the artifact under test.
    """
    ref, cand = _row_pair(
        ("reference_logits", "candidate_logits"), reference_logits, candidate_logits, EMOTION_COUNT
    )
    return float(np.mean(np.argmax(ref, axis=1) == np.argmax(cand, axis=1)))


def decided_emotion_agreement(
    reference_probs: np.ndarray, candidate_probs: np.ndarray, margin: float
) -> float:
    """``emotion_agreement`` over the faces whose reference top two emotions differ by at least
    ``margin`` in probability; 1.0 when none does. A face the reference itself barely decides
    between two emotions may flip honestly.

    Args:
        reference_probs: (N, 8) trusted emotion probabilities.
        candidate_probs: (N, 8) from the artifact under test.
        margin: the least gap between the reference's two most probable emotions.
    """
    top2 = np.sort(reference_probs, axis=1)[:, -2:]
    decided = (top2[:, 1] - top2[:, 0]) >= margin
    if not decided.any():
        return 1.0
    return emotion_agreement(reference_probs[decided], candidate_probs[decided])
