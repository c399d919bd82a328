"""The vectorised NMS against a direct transcription of the greedy algorithm."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from faceperf.pipeline.nms import nms


def _greedy(boxes, scores, threshold, mode, plus_one):
    extra = 1.0 if plus_one else 0.0

    def area(b):
        return (b[2] - b[0] + extra) * (b[3] - b[1] + extra)

    order = sorted(range(len(boxes)), key=lambda i: -scores[i])
    kept: list[int] = []
    for i in order:
        suppressed = False
        for j in kept:
            w = max(0.0, min(boxes[i][2], boxes[j][2]) - max(boxes[i][0], boxes[j][0]) + extra)
            h = max(0.0, min(boxes[i][3], boxes[j][3]) - max(boxes[i][1], boxes[j][1]) + extra)
            inter = w * h
            denominator = (
                min(area(boxes[i]), area(boxes[j]))
                if mode == "min"
                else area(boxes[i]) + area(boxes[j]) - inter
            )
            if inter / denominator > threshold:
                suppressed = True
                break
        if not suppressed:
            kept.append(i)
    return kept


@st.composite
def _boxes(draw):
    n = draw(st.integers(0, 25))
    corners = draw(arrays(np.float64, (n, 2), elements=st.integers(0, 60)))
    sizes = draw(arrays(np.float64, (n, 2), elements=st.integers(1, 30)))
    # Distinct scores: with ties the order between equal boxes is a convention, not a property.
    scores = np.asarray(
        draw(st.lists(st.integers(0, 10**6), min_size=n, max_size=n, unique=True)), np.float64
    )
    return np.hstack([corners, corners + sizes]), scores


@settings(max_examples=200, derandomize=True, database=None, deadline=None)
@given(
    _boxes(),
    st.sampled_from([0.3, 0.4, 0.5, 0.7]),
    st.sampled_from(["union", "min"]),
    st.booleans(),
)
def test_nms_equals_the_greedy_definition(data, threshold, mode, plus_one):
    boxes, scores = data
    kept = nms(boxes, scores, threshold, mode=mode, plus_one=plus_one)
    assert kept.tolist() == _greedy(boxes.tolist(), scores.tolist(), threshold, mode, plus_one)


def test_plus_one_convention_changes_the_overlap_of_small_boxes():
    boxes = np.array([[0, 0, 2, 2], [1, 1, 3, 3]], np.float64)
    scores = np.array([0.9, 0.8])
    # IoU without +1: 1/7 = 0.14; with +1 (3x3 boxes, 2x2 overlap): 4/14 = 0.29.
    assert nms(boxes, scores, 0.2).tolist() == [0, 1]
    assert nms(boxes, scores, 0.2, plus_one=True).tolist() == [0]


def test_empty_input_keeps_nothing():
    assert nms(np.zeros((0, 4)), np.zeros(0), 0.5).tolist() == []
