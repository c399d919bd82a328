"""What faceperf knows about each model: how to build it, its tensors, and its checkpoint.

One :class:`ModelSpec` per artifact model name of the artifact contract (``retinaface``,
``star``, ``mtl``, ``mtcnn_pnet``, ``mtcnn_rnet``, ``mtcnn_onet``). Everything downstream (weights,
export, runtime, tests) reads these records instead of repeating shapes and names.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import Enum
from functools import cache

from torch import nn


class WeightOrigin(Enum):
    """Where a family's trained weights come from."""

    # Real file dropped in weights/, else the committed one (weights/real/), else a surrogate.
    USER_CHECKPOINT = "user_checkpoint"
    PACKAGED = "packaged"  # always real: read out of a pinned PyPI package


@dataclass(frozen=True)
class Container:
    """How a family's real checkpoint wraps its state dict.

    Args:
        key: the dict key holding the state dict (``"net"`` for STAR), or None for a plain dict.
        optional_key: a wrapper key that may or may not be present (``"state_dict"``).
        strip_prefix: a prefix that may be on every key (``"module."`` from DataParallel).
    """

    key: str | None = None
    optional_key: str | None = None
    strip_prefix: str | None = None


@dataclass(frozen=True)
class CommittedCheckpoint:
    """Trained weights committed with faceperf (``weights/real/``), used when the user has
    dropped in none; the build refuses the file unless its sha256 is this one."""

    path: str  # relative to the repository root
    sha256: str


@dataclass(frozen=True)
class CheckpointSpec:
    """The real checkpoint a user may drop into ``weights/``, and the committed fallback."""

    filename: str
    container: Container
    committed: CommittedCheckpoint | None = None


@dataclass(frozen=True)
class ModelSpec:
    """Static facts about one exportable model.

    Args:
        name: artifact folder name.
        family: model family (``retinaface``, ``star``, ``mtl``, ``mtcnn``).
        build: returns a fresh module in eval mode with the checkpoint's state-dict names.
        param_count: published parameter count; a build that disagrees is a bug.
        input_name: the single input tensor's name.
        output_names: output tensor names in forward order.
        fixed_shape: the input shape of fixed-shape variants (also used to trace).
        baseline_dynamic: input axes left symbolic in the plain ``baseline`` export.
        fixed_dynamic: axes that stay symbolic even in fixed-shape variants, because the
            workload cannot fix them (P-Net's pyramid levels, R/O-Net candidate counts).
        checkpoint: the user's real checkpoint, for USER_CHECKPOINT families.
        origin: where trained weights come from.
    """

    name: str
    family: str
    build: Callable[[], nn.Module]
    param_count: int
    input_name: str
    output_names: tuple[str, ...]
    fixed_shape: tuple[int, int, int, int]
    baseline_dynamic: dict[int, str]
    fixed_dynamic: dict[int, str] = field(default_factory=dict)
    checkpoint: CheckpointSpec | None = None
    origin: WeightOrigin = WeightOrigin.USER_CHECKPOINT


class ModelRegistry:
    """An ordered, read-only lookup of model specs by name."""

    def __init__(self, specs: list[ModelSpec]) -> None:
        self._specs = {spec.name: spec for spec in specs}

    def __getitem__(self, name: str) -> ModelSpec:
        try:
            return self._specs[name]
        except KeyError:
            known = ", ".join(self._specs)
            raise KeyError(f"unknown model {name!r}; expected one of: {known}") from None

    def __iter__(self) -> Iterator[ModelSpec]:
        return iter(self._specs.values())

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def names(self) -> list[str]:
        return list(self._specs)


_BATCH = {0: "batch"}
_BATCH_HW = {0: "batch", 2: "height", 3: "width"}


@cache
def default_registry() -> ModelRegistry:
    """The six models of the artifact contract, in build order."""
    # Imported here so that reading the registry does not import every model up front.
    from faceperf.models import mtcnn, mtl, retinaface, star

    return ModelRegistry(
        [
            ModelSpec(
                name="retinaface",
                family="retinaface",
                build=retinaface.build_retinaface,
                param_count=retinaface.RETINAFACE_PARAMS,
                input_name="image",
                output_names=("loc", "conf", "landms"),
                fixed_shape=(1, 3, 640, 640),
                baseline_dynamic=_BATCH_HW,
                checkpoint=CheckpointSpec(
                    "Alignment_RetinaFace.pth",
                    Container(optional_key="state_dict", strip_prefix="module."),
                    committed=CommittedCheckpoint(
                        "weights/real/retinaface_mobilenet0.25_Final.pth",
                        "2979b33ffafda5d74b6948cd7a5b9a7a62f62b949cef24e95fd15d2883a65220",
                    ),
                ),
            ),
            ModelSpec(
                name="star",
                family="star",
                build=star.build_star,
                param_count=star.STAR_PARAMS,
                input_name="image",
                output_names=("landmarks",),
                fixed_shape=(1, 3, star.STAR_INPUT_SIZE, star.STAR_INPUT_SIZE),
                baseline_dynamic=_BATCH,
                checkpoint=CheckpointSpec("Landmark_98.pkl", Container(key="net")),
            ),
            ModelSpec(
                name="mtl",
                family="mtl",
                build=mtl.build_mtl,
                param_count=mtl.MTL_PARAMS,
                input_name="image",
                output_names=("emotion", "gaze", "au"),
                fixed_shape=(1, 3, mtl.MTL_INPUT_SIZE, mtl.MTL_INPUT_SIZE),
                baseline_dynamic=_BATCH,
                checkpoint=CheckpointSpec("MTL_backbone.pth", Container()),
            ),
            ModelSpec(
                name="mtcnn_pnet",
                family="mtcnn",
                build=mtcnn.build_pnet,
                param_count=mtcnn.MTCNN_PARAMS["mtcnn_pnet"],
                input_name="image",
                output_names=mtcnn.PNET_OUTPUTS,
                # The first pyramid level of a 1080p frame at min_face_size 60 (scale 12/60).
                fixed_shape=(1, 3, 216, 384),
                baseline_dynamic=_BATCH_HW,
                fixed_dynamic={2: "height", 3: "width"},
                origin=WeightOrigin.PACKAGED,
            ),
            ModelSpec(
                name="mtcnn_rnet",
                family="mtcnn",
                build=mtcnn.build_rnet,
                param_count=mtcnn.MTCNN_PARAMS["mtcnn_rnet"],
                input_name="image",
                output_names=mtcnn.RNET_OUTPUTS,
                fixed_shape=(1, 3, 24, 24),
                baseline_dynamic=_BATCH,
                fixed_dynamic=_BATCH,
                origin=WeightOrigin.PACKAGED,
            ),
            ModelSpec(
                name="mtcnn_onet",
                family="mtcnn",
                build=mtcnn.build_onet,
                param_count=mtcnn.MTCNN_PARAMS["mtcnn_onet"],
                input_name="image",
                output_names=mtcnn.ONET_OUTPUTS,
                fixed_shape=(1, 3, 48, 48),
                baseline_dynamic=_BATCH,
                fixed_dynamic=_BATCH,
                origin=WeightOrigin.PACKAGED,
            ),
        ]
    )
