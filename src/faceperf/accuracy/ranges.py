"""Output ranges: each model's outputs within what its construction allows, judged case by case.

A range is absolute: the candidate's own outputs are judged, never set against the reference's,
so a final activation a conversion dropped (a softmax, a ReLU, a normalisation) shows as values
no honest network can produce, whatever the weights. Every rule here names one output of a
subject's cases (``cases.run_subject``) and the ``[ranges]`` key of tolerances.toml that bounds
it, where the bounds and their reasons live; a rule without a key only asks for finite values.
Each rule gives one Measurement per case, ``range[<label>]``: the output's worst value (the
farthest outside the range, else the nearest to its ends; for a finite-only rule the largest in
magnitude) against the range, so a failure reads
``mtl optimized [obama#0] range[au] = -0.05 (limit in [0, 1.01]): FAILS``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from faceperf.accuracy.cases import Outputs
from faceperf.accuracy.compare import RANGES, Measurement
from faceperf.accuracy.tolerances import FINITE, Bounds, Tolerances


def _sum_error(probabilities: np.ndarray) -> np.ndarray:
    """How far each row's sum is from 1: read as is, where the sum itself would print as 1."""
    return probabilities.sum(axis=-1) - 1.0


@dataclass(frozen=True)
class RangeRule:
    """``range[<label>]``: output ``output`` of every case that has it, after ``transform``
    (a unit change, a per-row sum), within the ``[ranges]`` bounds ``key`` (None: finite)."""

    label: str
    output: str
    key: str | None = None
    transform: Callable[[np.ndarray], np.ndarray] | None = None

    @property
    def metric(self) -> str:
        return f"range[{self.label}]"

    def bounds(self, tolerances: Tolerances, variant: str) -> Bounds:
        return FINITE if self.key is None else tolerances.bounds(self.key, variant)


# Box and landmark offsets, decoded boxes and points, and logits have no bound by construction
# (a box may reach past the frame), but nothing honest makes them NaN or infinite.
RULES: dict[str, tuple[RangeRule, ...]] = {
    "retinaface": (
        RangeRule("conf", "tensor/conf", "score"),
        RangeRule("scores", "scores", "score"),
        RangeRule("loc", "tensor/loc"),
        RangeRule("landms", "tensor/landms"),
        RangeRule("boxes", "boxes"),
        RangeRule("landmarks", "landmarks"),
    ),
    # The frame points are the crop points through the crop's inverse affine map: bounded crop
    # points and a finite map leave nothing else to judge.
    "star": (RangeRule("landmarks", "tensor/landmarks", "star_landmarks"),),
    "mtl": (
        RangeRule("au", "au", "au"),
        RangeRule("emotion_probs", "emotion_probs", "emotion_probs"),
        RangeRule("emotion_sum_error", "emotion_probs", "emotion_sum_error", _sum_error),
        RangeRule("emotion", "tensor/emotion"),
        RangeRule("gaze", "gaze", "gaze_deg", np.degrees),
    ),
    "mtcnn": (
        RangeRule("prob", "tensor/prob", "score"),
        RangeRule("scores", "scores", "score"),
        RangeRule("reg", "tensor/reg"),
        RangeRule("onet_landmarks", "tensor/landmarks"),
        RangeRule("boxes", "boxes"),
        RangeRule("landmarks", "landmarks"),
    ),
}


def judge_ranges(
    subject: str, variant: str, outputs: Outputs, tolerances: Tolerances
) -> list[Measurement]:
    """One ``range[...]`` Measurement per rule of ``subject`` and case holding its output.

    Args:
        subject: the accuracy subject whose outputs these are.
        variant: the variant that produced them (the bounds may differ per variant).
        outputs: ``{case: {name: array}}`` as ``cases.run_subject`` (or a reference) has them.
        tolerances: where the bounds come from (``[ranges]``).
    """
    if subject not in RULES:
        raise KeyError(f"unknown accuracy subject {subject!r}; expected one of {', '.join(RULES)}")
    found = []
    for rule in RULES[subject]:
        bounds = rule.bounds(tolerances, variant)
        for case, arrays in outputs.items():
            if rule.output not in arrays:
                continue
            values = np.asarray(arrays[rule.output], np.float64)
            if rule.transform is not None:
                values = rule.transform(values)
            if values.size == 0:  # no detection in this case: nothing to judge
                continue
            worst = float(values.flat[int(np.argmax(bounds.severities(values)))])
            found.append(Measurement(subject, variant, RANGES, case, rule.metric, worst, bounds))
    return found
