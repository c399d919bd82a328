"""The artifact directory contract: ``<dir>/<model>/<variant>.onnx|.mlpackage`` + manifest."""

from __future__ import annotations

from pathlib import Path

VARIANTS = ("baseline", "optimized", "optimized_fp16", "coreml")
ONNX_VARIANTS = ("baseline", "optimized", "optimized_fp16")
MANIFEST_NAME = "manifest.json"


def variant_filename(variant: str) -> str:
    if variant not in VARIANTS:
        raise KeyError(f"unknown variant {variant!r}; expected one of: {', '.join(VARIANTS)}")
    return f"{variant}.mlpackage" if variant == "coreml" else f"{variant}.onnx"


def artifact_path(directory: Path, model: str, variant: str) -> Path:
    return directory / model / variant_filename(variant)
