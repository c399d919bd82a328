"""The jitter check's clips: a fixture face filmed by a camera that does not move, made on the fly.

A clip is ``FRAMES`` (12) frames of one fixture photograph's face. Frame t is the photograph
carried into the frame by a known affine transform ``transforms[t]`` (photograph pixels to
frame pixels; ``cv2.warpAffine``, bilinear, reflected border), in float, then, as a webcam's
sensor adds them: a brightness flicker (the whole frame times a gain drawn from
N(1, ``FLICKER_SIGMA`` = 1 %): 1.3 grey levels at mid-grey, 2.5 at white) and Gaussian sensor
noise of ``NOISE_SIGMA`` (2) grey levels per pixel and channel, rounded to uint8. The frame is a
square of ``FRAME_SIDES`` (2) face-box sides around the face (the fixture's MTCNN reference box).

- **Still** clips (``<image>@still``): nothing moves but the sensor. Each frame is shifted by a
  sub-pixel translation drawn uniformly from +-``SHIFT`` (0.5) px in x and y, as a camera on a
  desk trembles; the shift is part of the recorded transform.
- **Motion** clips (``<image>@motion``): slow real motion along a smooth known path, about the
  face centre: per frame a translation (1.5, 0.75) px, a scale of +0.25 % and a rotation of
  0.2 deg (over 12 frames 16.5 px, 2.8 % and 2.2 deg).

Everything is drawn from NumPy's legacy ``RandomState`` with the clip's own seed (its stream is
frozen, as the surrogate weights' is), so a clip is the same frames on every machine with the
same OpenCV. Nothing is stored on disk: the clips are made in about a second and kept in memory
for the process (``make_clip`` is cached). The jitter references store each clip's recipe
(``recipe_json``), checked before any comparison, and its frames' sha256 (``Clip.digest``),
which is not: another CPU's OpenCV may round the warp's last bit differently.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache

import cv2
import numpy as np

from faceperf.fixtures import faces as fixture_faces

FRAMES = 12
NOISE_SIGMA = 2.0  # grey levels
FLICKER_SIGMA = 0.01  # relative gain per frame
SHIFT = 0.5  # px, still clips' per-frame translation bound
FRAME_SIDES = 2.0  # frame side in face-box sides


@dataclass(frozen=True)
class Motion:
    """A smooth path, per frame and about the face centre: translation (px), relative scale
    change, rotation (degrees, counter-clockwise as OpenCV draws it)."""

    shift: tuple[float, float]
    scale: float
    rotation_deg: float


@dataclass(frozen=True)
class ClipRecipe:
    """How to make one clip: photograph and face, seed, and motion (None: a still clip)."""

    name: str
    image: str
    face: int
    seed: int
    motion: Motion | None = None
    frames: int = FRAMES


@dataclass(frozen=True, eq=False)
class Clip:
    """One clip's frames (BGR uint8, read-only), the transform of each, and the fixture face's
    box carried into each frame (the axis-aligned box around its moved corners)."""

    recipe: ClipRecipe
    frames: tuple[np.ndarray, ...]
    transforms: np.ndarray  # (T, 2, 3) photograph pixels -> frame pixels
    face_boxes: np.ndarray  # (T, 4) [x1, y1, x2, y2] in frame pixels
    digest: str  # sha256 of every frame's bytes, in order

    @property
    def name(self) -> str:
        return self.recipe.name


SLOW_MOTION = Motion(shift=(1.5, 0.75), scale=0.0025, rotation_deg=0.2)
CLIPS: tuple[ClipRecipe, ...] = (
    ClipRecipe("obama@still", "obama", 0, seed=1),
    ClipRecipe("grace_hopper@still", "grace_hopper", 0, seed=2),
    ClipRecipe("grace_hopper@motion", "grace_hopper", 0, seed=3, motion=SLOW_MOTION),
)


def recipe_json(recipe: ClipRecipe) -> dict:
    """The recipe and the sensor model as a reference's provenance records them."""
    motion = recipe.motion
    return {
        "image": recipe.image,
        "face": recipe.face,
        "seed": recipe.seed,
        "frames": recipe.frames,
        "motion": None
        if motion is None
        else {
            "shift": list(motion.shift),
            "scale": motion.scale,
            "rotation_deg": motion.rotation_deg,
        },
        "noise_sigma": NOISE_SIGMA,
        "flicker_sigma": FLICKER_SIGMA,
        "still_shift": SHIFT if motion is None else 0.0,
        "frame_sides": FRAME_SIDES,
    }


@cache
def make_clip(recipe: ClipRecipe) -> Clip:
    """The frames of ``recipe`` (made once per process)."""
    photo = fixture_faces.load_image(recipe.image)
    box = fixture_faces.reference_faces(recipe.image)[recipe.face].box
    centre = (box[:2] + box[2:]) / 2
    side = int(np.ceil(FRAME_SIDES * float(np.max(box[2:] - box[:2]))))
    origin = np.floor(centre - side / 2)
    rng = np.random.RandomState(recipe.seed)
    transforms = np.stack(
        [_transform(recipe, t, centre, origin, rng) for t in range(recipe.frames)]
    )
    source = photo.astype(np.float32)
    frames = tuple(_frame(source, m, side, rng) for m in transforms)
    digest = hashlib.sha256(b"".join(f.tobytes() for f in frames)).hexdigest()
    transforms.setflags(write=False)
    boxes = np.stack([_carried_box(box, m) for m in transforms])
    boxes.setflags(write=False)
    return Clip(recipe, frames, transforms, boxes, digest)


def _transform(
    recipe: ClipRecipe, t: int, centre: np.ndarray, origin: np.ndarray, rng: np.random.RandomState
) -> np.ndarray:
    motion = recipe.motion
    if motion is None:
        matrix = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
        matrix[:, 2] = rng.uniform(-SHIFT, SHIFT, 2)
    else:
        matrix = cv2.getRotationMatrix2D(
            (float(centre[0]), float(centre[1])), motion.rotation_deg * t, 1.0 + motion.scale * t
        )
        matrix[:, 2] += np.asarray(motion.shift) * t
    matrix[:, 2] -= origin  # the frame's top-left is the photograph's ``origin``
    return matrix


def _frame(
    source: np.ndarray, matrix: np.ndarray, side: int, rng: np.random.RandomState
) -> np.ndarray:
    # Float before the warp (MODELS.md): a uint8 warp would round the sub-pixel shift away.
    image = cv2.warpAffine(
        source, matrix, (side, side), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101
    )
    gain = 1.0 + rng.normal(0.0, FLICKER_SIGMA)
    noise = rng.normal(0.0, NOISE_SIGMA, image.shape)
    frame = np.clip(np.rint(image * gain + noise), 0, 255).astype(np.uint8)
    frame.setflags(write=False)
    return frame


def _carried_box(box: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    corners = np.array([[box[0], box[1]], [box[2], box[1]], [box[0], box[3]], [box[2], box[3]]])
    moved = corners @ matrix[:, :2].T + matrix[:, 2]
    return np.concatenate([moved.min(axis=0), moved.max(axis=0)])


def to_photo(points: np.ndarray, transforms: np.ndarray) -> np.ndarray:
    """Frame points (T, K, 2) mapped back into the photograph through each frame's inverse
    transform: what removes the clip's true motion."""
    points = np.asarray(points, np.float64)
    back = np.empty_like(points)
    for t, matrix in enumerate(np.asarray(transforms, np.float64)):
        inverse = cv2.invertAffineTransform(matrix)
        back[t] = points[t] @ inverse[:, :2].T + inverse[:, 2]
    return back


def zoom(transforms: np.ndarray) -> np.ndarray:
    """(T,) each transform's linear scale, sqrt(|det|): frame pixels per photograph pixel."""
    linear = np.asarray(transforms, np.float64)[:, :, :2]
    return np.sqrt(np.abs(np.linalg.det(linear)))
