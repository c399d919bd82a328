"""Accuracy per face size and pose: the bins are what their recipes say (each face at its bin's
inter-ocular distance, roll and mirror, carried by the recorded transform), a failure names its
bin, the references are stored and checked like the others, and a fault that breaks only faces
smaller than any fixture face passes every per-face check and fails the smallest bin, through
the library, the fault catalogue and ``faceperf accuracy check``.

That the honest variants pass is proven by accuracy_tests itself
(``test_accuracy[<subject>-<variant>-bins]``), as for every other check."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from faceperf.accuracy import bins, poses
from faceperf.accuracy.cases import SUBJECTS, Candidate
from faceperf.accuracy.compare import BINS, CHECKS, JITTER
from faceperf.accuracy.faults import FAULTS, SMALL_FACE_PX, evaluate_fault, small_faces_nearest
from faceperf.accuracy.references import (
    BINS_SUBJECTS,
    ReferenceError,
    read_reference,
    reference_path,
    write_reference,
)
from faceperf.accuracy.session import judge_subject
from faceperf.accuracy.tolerances import TolerancesError, default_tolerances_path, load_tolerances
from faceperf.cli import main
from faceperf.fixtures import faces as fixture_faces
from faceperf.verdicts import Verdict

TOLERANCES = load_tolerances()
NAMES = [recipe.name for recipe in poses.BINS]


def _face(bin_face: poses.BinFace) -> fixture_faces.ReferenceFace:
    image, k = bin_face.face.split("#")
    return fixture_faces.reference_faces(image)[int(k)]


# --- the bins ---------------------------------------------------------------------------------


def test_the_bins_span_the_sizes_and_poses_asked_for():
    assert NAMES == [
        "iod 20px",
        "iod 40px",
        "iod 80px",
        "iod 160px",
        "iod 320px",
        "roll -30°",
        "roll -15°",
        "roll +15°",
        "roll +30°",
        "mirrored",
    ]
    assert set(CHECKS[s][-1] for s in SUBJECTS) == {BINS} and set(BINS_SUBJECTS) == set(SUBJECTS)
    # STAR's cost: one call per bin face
    assert len(poses.bin_faces()) == len(poses.BINS) * len(poses.FACES) <= 20


@pytest.mark.parametrize("bin_face", poses.bin_faces(), ids=lambda f: f.case)
def test_each_face_has_its_bins_size_roll_and_side(bin_face):
    recipe, face = bin_face.recipe, _face(bin_face)
    eyes = poses.to_frame(face.landmarks[:2], bin_face.transform)
    step = eyes[1] - eyes[0]
    assert np.hypot(*step) == pytest.approx(recipe.iod_px, rel=1e-9)
    # (1, 0) goes to (cos r, -sin r): counter-clockwise on screen, y pointing down
    before = face.landmarks[1] - face.landmarks[0]
    photo_angle = np.degrees(np.arctan2(before[1], before[0]))
    expected = (180.0 - photo_angle if recipe.mirrored else photo_angle) - recipe.roll_deg
    turned = np.degrees(np.arctan2(step[1], step[0])) - expected
    assert (turned + 180.0) % 360.0 - 180.0 == pytest.approx(0.0, abs=1e-9)
    # the face's box is its own size times the scale, centred in the frame, upright
    side = bin_face.frame.shape[0]
    centre = (bin_face.box[:2] + bin_face.box[2:]) / 2
    np.testing.assert_allclose(centre, [(side - 1) / 2] * 2)
    moved = poses.to_frame((face.box[:2] + face.box[2:]) / 2, bin_face.transform)
    np.testing.assert_allclose(moved, centre, atol=1e-9)
    scale = recipe.iod_px / poses.iod_px(face)
    np.testing.assert_allclose(
        bin_face.box[2:] - bin_face.box[:2], scale * (face.box[2:] - face.box[:2])
    )
    assert side == max(
        poses.MIN_FRAME, int(np.ceil(1.5 * scale * max(face.box[2:] - face.box[:2])))
    )
    assert not bin_face.frame.flags.writeable and bin_face.frame.dtype == np.uint8


@pytest.mark.parametrize("name", ["iod 160px", "iod 320px"])
def test_an_enlarged_frame_is_the_photograph_warped_by_the_recorded_transform(name):
    bin_face = next(f for f in poses.bin_faces() if f.recipe.name == name)
    image = bin_face.face.split("#")[0]
    photo = fixture_faces.load_image(image).astype(np.float32)
    shape = bin_face.frame.shape[1::-1]
    clean = cv2.warpAffine(photo, bin_face.transform, shape, flags=cv2.INTER_LINEAR)
    x1, y1, x2, y2 = (int(v) for v in bin_face.box)
    residual = bin_face.frame[y1:y2, x1:x2].astype(np.float64) - clean[y1:y2, x1:x2]
    assert np.abs(residual).max() <= 0.5 + 1e-3  # the uint8 rounding only
    nudged = bin_face.transform + np.array([[0, 0, 1.0], [0, 0, 0]])
    wrong = cv2.warpAffine(photo, nudged, shape, flags=cv2.INTER_LINEAR)
    assert np.abs(bin_face.frame[y1:y2, x1:x2] - wrong[y1:y2, x1:x2]).mean() > 2.0


def test_a_shrunk_face_is_area_averaged_not_aliased():
    small = next(f for f in poses.bin_faces() if f.recipe.name == "iod 20px")
    photo = fixture_faces.load_image(small.face.split("#")[0]).astype(np.float32)
    shape = small.frame.shape[1::-1]
    aliased = cv2.warpAffine(photo, small.transform, shape, flags=cv2.INTER_LINEAR)
    x1, y1, x2, y2 = (int(v) for v in small.box)
    face = small.frame[y1:y2, x1:x2].astype(np.float64)
    # the same geometry (mean within a grey level) but smoother than a bilinear 5x reduction
    assert abs(face.mean() - aliased[y1:y2, x1:x2].mean()) < 1.0
    assert (
        np.abs(np.diff(face, axis=1)).mean() < np.abs(np.diff(aliased[y1:y2, x1:x2], axis=1)).mean()
    )


def test_the_frames_are_the_same_every_time():
    again = poses.make_bin_face(poses.BINS[5], *poses.FACES[1])
    made = poses.bin_faces()[5 * len(poses.FACES) + 1]
    assert again.case == made.case and again.digest == made.digest
    assert poses.case_names() == [f.case for f in poses.bin_faces()]


# --- the metric -------------------------------------------------------------------------------


def _copy(outputs):
    return {case: {k: np.array(v) for k, v in arrays.items()} for case, arrays in outputs.items()}


def test_a_landmark_error_in_one_bin_fails_that_bin_only():
    reference = read_reference("star").bins.outputs
    candidate = _copy(reference)
    case = "iod 40px|grace_hopper#0"
    eyes = reference[case]["landmarks"][60] - reference[case]["landmarks"][72]
    candidate[case]["landmarks"] = candidate[case]["landmarks"] + [np.hypot(*eyes) * 0.01, 0.0]
    found = bins.judge_bins("star", "optimized", reference, candidate, TOLERANCES)
    assert [m.case for m in found] == NAMES and {m.metric for m in found} == {"bins[nme_pct]"}
    (failed,) = [m for m in found if not m.passed]
    assert failed.case == "iod 40px" and failed.value == pytest.approx(1.0)
    assert failed.describe().startswith("star optimized [iod 40px] bins[nme_pct] = 1 %")


def test_a_face_lost_or_boxed_worse_fails_its_bin():
    reference = read_reference("retinaface").bins.outputs
    candidate = _copy(reference)
    candidate["roll +30°|obama#0"]["boxes"] = np.zeros((0, 4))
    candidate["roll +30°|obama#0"]["scores"] = np.zeros(0)
    candidate["iod 20px|grace_hopper#0"]["boxes"] = (
        reference["iod 20px|grace_hopper#0"]["boxes"] + 3
    )
    found = bins.judge_bins("retinaface", "optimized", reference, candidate, TOLERANCES)
    failed = {(m.case, m.metric): m.value for m in found if not m.passed}
    assert set(failed) == {("roll +30°", "bins[missed]"), ("iod 20px", "bins[iou_drop]")}
    assert failed["roll +30°", "bins[missed]"] == 1.0
    assert failed["iod 20px", "bins[iou_drop]"] > 0.1  # 3 px on a 41-px face
    # a face only the candidate finds is no failure
    assert all(
        m.passed
        for m in bins.judge_bins("retinaface", "optimized", candidate, reference, TOLERANCES)
        if m.metric == "bins[missed]"
    )


def test_missing_bin_faces_are_the_candidates_fault_named():
    reference = read_reference("mtl").bins.outputs
    candidate = _copy(reference)
    del candidate["mirrored|obama#0"]
    with pytest.raises(ValueError, match=r"mtl optimized: the candidate has no mirrored\|obama#0"):
        bins.judge_bins("mtl", "optimized", reference, candidate, TOLERANCES)


def test_a_tolerances_file_without_a_bins_limit_is_refused(tmp_path):
    lines = default_tolerances_path().read_text().splitlines()
    path = tmp_path / "tolerances.toml"
    path.write_text("\n".join(line for line in lines if not line.startswith("iou_drop_max =")))
    with pytest.raises(TolerancesError, match=r"missing limit\(s\) \[bins\] iou_drop_max"):
        load_tolerances(path)


# --- the references ---------------------------------------------------------------------------


@pytest.mark.parametrize("subject", BINS_SUBJECTS)
def test_the_committed_bins_references_hold_every_bin_face(subject):
    reference = read_reference(subject).bins
    assert reference.kind == BINS and list(reference.outputs) == poses.case_names()
    assert reference.provenance["variant"] == "baseline" and set(
        reference.provenance["bins"]
    ) == set(NAMES)
    digests = {f.case: f.digest for f in poses.bin_faces()}
    assert {c: str(a[bins.DIGEST]) for c, a in reference.outputs.items()} == digests


def test_a_bins_reference_from_other_recipes_is_refused_with_the_way_out(tmp_path):
    reference = read_reference("mtl")
    for part in (reference, reference.bins):
        write_reference(part, reference_path("mtl", tmp_path, part.kind))
    stored = reference.bins
    recipes = json.loads(json.dumps(stored.provenance["bins"]))
    recipes["iod 20px"]["iod_px"] = 24
    changed = type(stored)(stored.subject, stored.outputs, {**stored.provenance, "bins": recipes})
    write_reference(changed, reference_path("mtl", tmp_path, BINS))
    with pytest.raises(
        ReferenceError,
        match=r"iod 20px: recipe changed or missing\); rebuild with `faceperf references build "
        r"--only bins`",
    ):
        read_reference("mtl", tmp_path)


def test_without_a_bins_reference_the_bins_are_not_judged_and_say_how_to_build_it(
    artifacts_dir, tmp_path
):
    write_reference(read_reference("mtl"), reference_path("mtl", tmp_path))
    reference = read_reference("mtl", tmp_path)
    assert reference.bins is None
    result = judge_subject("mtl", Candidate(artifacts_dir, "optimized"), reference, TOLERANCES)
    assert not [m for m in result.measurements if m.check == BINS]
    assert result.unjudged[BINS] == (
        "no bins references for mtl; build them with `faceperf references build --only bins`"
    )


@pytest.mark.slow
def test_references_build_only_bins_writes_only_them_and_gives_the_committed_values(
    artifacts_dir, tmp_path, capsys
):
    code = main(
        [
            "references",
            "build",
            "--only",
            "bins",
            "--subjects",
            "mtl",
            "--artifacts",
            str(artifacts_dir),
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 0 and "20 bin faces" in capsys.readouterr().out
    assert [p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.npz")] == ["bins/mtl.npz"]
    with (
        np.load(tmp_path / "bins" / "mtl.npz") as new,
        np.load(reference_path("mtl", kind=BINS)) as old,
    ):
        assert set(new.files) == set(old.files)
        for key in new.files:
            if key != "provenance" and new[key].dtype.kind == "f":
                # another CPU's kernels move the last bits (docs/accuracy.md)
                np.testing.assert_allclose(new[key], old[key], atol=1e-4, err_msg=key)


# --- the check in the suite -------------------------------------------------------------------


def test_judge_subject_runs_the_bins_only_when_asked(artifacts_dir):
    candidate = Candidate(artifacts_dir, "optimized")
    reference = read_reference("mtl")
    without = judge_subject("mtl", candidate, reference, TOLERANCES, costly=(JITTER,))
    assert not [m for m in without.measurements if m.check == BINS] and BINS not in without.unjudged
    judged = judge_subject("mtl", candidate, reference, TOLERANCES)
    binned = [m for m in judged.measurements if m.check == BINS]
    assert sorted({m.case for m in binned}, key=NAMES.index) == NAMES
    assert judged.verdict is Verdict.PASS, [m.describe() for m in judged.failures]


def test_tiny_faces_resampled_nearest_pass_every_per_face_check_and_fail_the_smallest_bin(
    artifacts_dir, capsys
):
    # no fixture face is narrower than the fault's threshold: the per-face cases cannot see it
    widths = [f.box[2] - f.box[0] for f in fixture_faces.all_reference_faces()]
    assert min(widths) >= SMALL_FACE_PX
    with small_faces_nearest():
        result = judge_subject(
            "mtl", Candidate(artifacts_dir, "optimized"), read_reference("mtl"), TOLERANCES
        )
        code = main(
            [
                "accuracy",
                "check",
                "--candidate",
                str(artifacts_dir),
                "--subjects",
                "mtl",
                "--variants",
                "optimized",
            ]
        )
    assert {m.check for m in result.failures} == {BINS}
    assert {m.case for m in result.failures} == {"iod 20px"}
    assert {m.metric for m in result.failures} == {"bins[gaze_deg]", "bins[au_max_abs]"}
    out = capsys.readouterr().out
    assert code == 1 and "mtl optimized [iod 20px] bins[gaze_deg] = " in out and "FAILS" in out


@pytest.mark.slow
def test_the_catalogue_catches_tiny_faces_resampled_nearest_on_star_in_the_smallest_bin(
    artifacts_dir, tmp_path
):
    fault = FAULTS["small_faces_nearest"]
    result = evaluate_fault(
        fault, "star", artifacts_dir, tmp_path, read_reference("star"), TOLERANCES
    )
    assert result.verdict is Verdict.PASS, result.describe()
    assert [(m.case, m.metric) for m in result.failures] == [("iod 20px", "bins[nme_pct]")]
    assert result.failures[0].value > 10 * result.failures[0].limit.bound
