"""Profiler operation names, as the Face Mirror application named them.

Inference is ``<Model>_<label>`` where the label names the runtime (``STAR_onnx``,
``MTL_coreml``, ``RetinaFace_pytorch``); pre- and postprocessing are ``<Model>_preprocess`` and
``<Model>_postprocess`` whatever the runtime, so reports line up with the application's own.
"""

from __future__ import annotations

from dataclasses import dataclass

RETINAFACE = "RetinaFace"
STAR = "STAR"
MTL = "MTL"

# Runner backend -> the application's suffix: every ONNX Runtime provider is "onnx".
_LABELS = {
    "ort-cpu": "onnx",
    "ort-coreml": "onnx",
    "ort-cuda": "onnx",
    "coreml": "coreml",
    "torch": "pytorch",
}


def backend_label(backend: str) -> str:
    """The application's operation suffix for a runner backend.

    Args:
        backend: ``Runner.backend`` (``ort-cpu``, ``ort-coreml``, ``ort-cuda``, ``coreml``,
            ``torch``).
    """
    try:
        return _LABELS[backend]
    except KeyError:
        raise ValueError(
            f"unknown runner backend {backend!r}; expected one of {', '.join(_LABELS)}"
        ) from None


@dataclass(frozen=True)
class StageNames:
    """The three operation names one model wrapper records."""

    inference: str
    preprocess: str
    postprocess: str


def stage_names(model: str, backend: str) -> StageNames:
    """Operation names for ``model`` (``RetinaFace``, ``STAR``, ``MTL``) served by ``backend``.

    Args:
        model: the application's model prefix (one of RETINAFACE, STAR, MTL).
        backend: ``Runner.backend``.
    """
    return StageNames(
        inference=f"{model}_{backend_label(backend)}",
        preprocess=f"{model}_preprocess",
        postprocess=f"{model}_postprocess",
    )
