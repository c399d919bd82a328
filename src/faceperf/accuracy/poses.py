"""The bins check's frames: fixture faces at known sizes and poses, made on the fly.

A bin is one face size or pose (``BINS``): five sizes, the inter-ocular distance (IOD, between
the eye centres of the face's MTCNN reference landmarks) set to 20, 40, 80, 160 and 320 px,
upright; and five poses at 80 px: in-plane rotation (roll) of -30, -15, +15 and +30 degrees
and a mirror image (the upright pose, roll 0, is the ``iod 80px`` bin: the same frames). Each
bin holds the same fixture faces (``FACES``).

A bin face's frame is the photograph carried by one known affine transform (scale about the
face centre, then the mirror and the rotation, then the face centre to the frame's centre):
shrunk first with area averaging (``cv2.resize``, INTER_AREA, in float, as a camera's sensor
integrates the light of a pixel; a bilinear warp alone would alias a 5x reduction), then
warped bilinearly in float, rounded to uint8. The frame is square, ``FRAME_SIDES`` (1.5) face
lengths wide but never below ``MIN_FRAME`` (640, RetinaFace's letterbox size: a face up to the
160-px bin reaches its network at the bin's own size); outside the photograph it is grey.
The face's box in the frame (``BinFace.box``) is the reference box's size times the scale,
centred on the moved face centre and kept upright: the box a detector draws around a rolled
face, not the bounding box of the rotated corners (1.9x the area at 30 degrees). Roll is
counter-clockwise as the frame is displayed (OpenCV's convention).

Nothing is random and nothing is stored: the 20 frames take half a second to make and are
kept for the process (``bin_faces`` is cached). The bins references store each bin's recipe
(``recipe_json``), checked before any comparison, and each frame's sha256, which is not:
another CPU's OpenCV may round a warp's last bit differently.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache

import cv2
import numpy as np

from faceperf.fixtures import faces as fixture_faces

# Two portrait faces of two photographs (the jitter clips' faces): IOD 106 and 88 px, so the
# largest bin enlarges them 3-3.6x and the smallest shrinks them 4.4-5.3x.
FACES: tuple[tuple[str, int], ...] = (("obama", 0), ("grace_hopper", 0))
IODS_PX = (20, 40, 80, 160, 320)
POSE_IOD_PX = 80
ROLLS_DEG = (-30, -15, 15, 30)
MIN_FRAME = 640
FRAME_SIDES = 1.5
BACKGROUND = 127.0  # grey outside the photograph


@dataclass(frozen=True)
class BinRecipe:
    """One bin: the face's inter-ocular distance in px, its roll in degrees and whether it is
    mirrored."""

    name: str
    iod_px: float
    roll_deg: float = 0.0
    mirrored: bool = False


def _roll_name(degrees: float) -> str:
    return f"roll {degrees:+g}°"


BINS: tuple[BinRecipe, ...] = (
    *(BinRecipe(f"iod {iod}px", iod) for iod in IODS_PX),
    *(BinRecipe(_roll_name(roll), POSE_IOD_PX, roll_deg=roll) for roll in ROLLS_DEG),
    BinRecipe("mirrored", POSE_IOD_PX, mirrored=True),
)


@dataclass(frozen=True, eq=False)
class BinFace:
    """One fixture face in one bin: its frame (BGR uint8, read-only), the transform that made
    it, the face's box in the frame, and the frame's sha256."""

    recipe: BinRecipe
    face: str  # "<image>#<k>"
    frame: np.ndarray
    transform: np.ndarray  # (2, 3) photograph pixels -> frame pixels
    box: np.ndarray  # (4,) [x1, y1, x2, y2] in frame pixels
    digest: str

    @property
    def case(self) -> str:
        return case_name(self.recipe, self.face)


def case_name(recipe: BinRecipe, face: str) -> str:
    """A bin face's case in the references: ``<bin>|<image>#<k>``."""
    return f"{recipe.name}|{face}"


def case_names() -> list[str]:
    """Every bin face's case, in ``bin_faces`` order, without making the frames."""
    return [case_name(recipe, f"{image}#{k}") for recipe in BINS for image, k in FACES]


def recipe_json(recipe: BinRecipe) -> dict:
    """The recipe and the frame rules as a reference's provenance records them."""
    return {
        "iod_px": recipe.iod_px,
        "roll_deg": recipe.roll_deg,
        "mirrored": recipe.mirrored,
        "faces": [f"{image}#{k}" for image, k in FACES],
        "min_frame": MIN_FRAME,
        "frame_sides": FRAME_SIDES,
        "background": BACKGROUND,
    }


def iod_px(face: fixture_faces.ReferenceFace) -> float:
    """The distance between the eye centres of ``face``'s MTCNN reference landmarks."""
    return float(np.linalg.norm(face.landmarks[0] - face.landmarks[1]))


@cache
def bin_faces() -> tuple[BinFace, ...]:
    """Every bin's faces, bin by bin, made once per process."""
    return tuple(make_bin_face(recipe, image, k) for recipe in BINS for image, k in FACES)


def make_bin_face(recipe: BinRecipe, image: str, k: int) -> BinFace:
    """The frame of face ``k`` of ``image`` in bin ``recipe``."""
    face = fixture_faces.reference_faces(image)[k]
    photo = fixture_faces.load_image(image).astype(np.float32)
    scale = recipe.iod_px / iod_px(face)
    size = face.box[2:] - face.box[:2]
    side = int(max(MIN_FRAME, np.ceil(FRAME_SIDES * scale * float(size.max()))))
    shrink = np.eye(3)
    if scale < 1.0:
        # Area first (float, before any resampling: MODELS.md), then the warp does the rest.
        height, width = photo.shape[:2]
        out = (max(1, round(width * scale)), max(1, round(height * scale)))
        photo = cv2.resize(photo, out, interpolation=cv2.INTER_AREA)
        sx, sy = out[0] / width, out[1] / height
        # cv2.resize maps pixel centres: x' = (x + 0.5) sx - 0.5
        shrink = np.array([[sx, 0.0, 0.5 * sx - 0.5], [0.0, sy, 0.5 * sy - 0.5], [0, 0, 1.0]])
    total = _transform(recipe, scale, (face.box[:2] + face.box[2:]) / 2, side)
    rest = total @ np.linalg.inv(shrink)
    warped = cv2.warpAffine(
        photo,
        rest[:2],
        (side, side),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(BACKGROUND,) * 3,
    )
    frame = np.clip(np.rint(warped), 0, 255).astype(np.uint8)
    frame.setflags(write=False)
    centre = np.full(2, (side - 1) / 2)
    box = np.concatenate([centre - scale * size / 2, centre + scale * size / 2])
    matrix = total[:2].copy()
    for array in (matrix, box):
        array.setflags(write=False)
    digest = hashlib.sha256(frame.tobytes()).hexdigest()
    return BinFace(recipe, f"{image}#{k}", frame, matrix, box, digest)


def _transform(recipe: BinRecipe, scale: float, centre: np.ndarray, side: int) -> np.ndarray:
    """(3, 3) photograph -> frame: the face centre to the origin, scale, mirror, roll, then to
    the frame's centre."""
    to_origin = np.array([[1.0, 0, -centre[0]], [0, 1.0, -centre[1]], [0, 0, 1.0]])
    mirror = np.diag([-1.0 if recipe.mirrored else 1.0, 1.0, 1.0])
    angle = np.radians(recipe.roll_deg)
    cos, sin = np.cos(angle), np.sin(angle)
    # y points down: this is counter-clockwise on screen, as cv2.getRotationMatrix2D
    roll = np.array([[cos, sin, 0.0], [-sin, cos, 0.0], [0, 0, 1.0]])
    middle = (side - 1) / 2
    to_frame = np.array([[1.0, 0, middle], [0, 1.0, middle], [0, 0, 1.0]])
    return to_frame @ roll @ mirror @ np.diag([scale, scale, 1.0]) @ to_origin


def to_frame(points: np.ndarray, transform: np.ndarray) -> np.ndarray:
    """Photograph points (..., 2) carried into a bin face's frame by its ``transform``."""
    points = np.asarray(points, np.float64)
    return points @ np.asarray(transform)[:, :2].T + np.asarray(transform)[:, 2]
