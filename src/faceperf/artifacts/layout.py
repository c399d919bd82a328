"""The artifact directory contract: ``<dir>/<model>/<variant>.onnx|.mlpackage`` + manifest."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path


class Variant(StrEnum):
    """An artifact variant of the contract.

    A member equals its name as a string (a manifest key, a file stem, a test id), so records
    read from JSON and a parsed option meet without conversion.
    """

    BASELINE = "baseline"  # plain FP32 export, as first shipped
    OPTIMIZED = "optimized"  # fixed shapes, graph optimised: the variant being gated
    OPTIMIZED_FP16 = "optimized_fp16"  # ONNX FP16
    COREML = "coreml"  # mlprogram FP16, CPU_AND_NE, fixed shapes

    @property
    def is_onnx(self) -> bool:
        return self is not Variant.COREML

    @property
    def filename(self) -> str:
        return f"{self.value}.mlpackage" if self is Variant.COREML else f"{self.value}.onnx"

    @classmethod
    def parse(cls, name: str) -> Variant:
        """The variant named ``name``.

        Raises:
            ValueError: not a variant, with the valid names.
        """
        try:
            return cls(name)
        except ValueError:
            valid = ", ".join(cls)
            raise ValueError(f"unknown variant {name!r}; expected one of: {valid}") from None


VARIANTS: tuple[Variant, ...] = tuple(Variant)
ONNX_VARIANTS: tuple[Variant, ...] = tuple(v for v in Variant if v.is_onnx)
MANIFEST_NAME = "manifest.json"


def variant_filename(variant: str) -> str:
    try:
        return Variant.parse(variant).filename
    except ValueError as err:
        raise KeyError(str(err)) from None


def artifact_path(directory: Path, model: str, variant: str) -> Path:
    return directory / model / variant_filename(variant)
