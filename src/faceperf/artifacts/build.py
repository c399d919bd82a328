"""Building the default artifact set: every model in every variant, plus the manifest.

Everything is written into a staging folder beside the output and moved into place only when the
whole build has succeeded, so a failed or killed build leaves the previous artifacts untouched
and nothing half-written in the output folder.
"""

from __future__ import annotations

import hashlib
import platform
import shutil
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from tqdm import tqdm

from faceperf.artifacts import coreml_export, onnx_export
from faceperf.artifacts.layout import artifact_path
from faceperf.artifacts.manifest import (
    Manifest,
    ModelRecord,
    TensorInfo,
    VariantRecord,
    read_manifest,
    write_manifest,
)
from faceperf.errors import ArtifactError
from faceperf.fileio import replace_tree, sha256_path, size_of
from faceperf.models.registry import ModelRegistry, ModelSpec, default_registry
from faceperf.weights.sources import (
    DEFAULT_SEED,
    WeightPolicy,
    resolve_weights,
    weights_identity,
)

_TOOLS = ("torch", "onnx", "onnxruntime", "coremltools", "numpy")
# Source folders whose code decides the artifacts' bytes: a change in them makes builds stale.
_BUILD_CODE = ("models", "weights", "artifacts")


@dataclass(frozen=True)
class BuildRequest:
    """What to build, and from which weights.

    Args:
        out: the artifact folder (``weights/build`` by default).
        models: model names to (re)build; others already in ``out`` are kept as they are.
        policy: which weights to use (see WeightPolicy).
        weights_dir: where real checkpoints are looked for.
        seed: surrogate seed.
    """

    out: Path
    models: Sequence[str]
    policy: WeightPolicy = WeightPolicy.AUTO
    weights_dir: Path | None = None
    seed: int = DEFAULT_SEED


def tool_versions() -> dict[str, str]:
    versions = {name: metadata.version(name) for name in _TOOLS}
    versions["python"] = platform.python_version()
    versions["faceperf"] = metadata.version("faceperf") if _installed() else "source"
    return versions


def _installed() -> bool:
    try:
        metadata.version("faceperf")
    except metadata.PackageNotFoundError:
        return False
    return True


def fingerprint(spec: ModelSpec, request: BuildRequest) -> str:
    """A hash of everything that decides ``spec``'s artifacts: code, weights, tool versions."""
    digest = hashlib.sha256()
    package = Path(__file__).resolve().parents[1]
    for folder in _BUILD_CODE:
        for source in sorted((package / folder).glob("*.py")):
            digest.update(source.name.encode() + source.read_bytes())
    identity = weights_identity(spec, request.policy, request.weights_dir, request.seed)
    digest.update(repr(sorted(identity.items())).encode())
    digest.update(repr(sorted(tool_versions().items())).encode())
    digest.update(spec.name.encode())
    return digest.hexdigest()


def stale_models(request: BuildRequest, registry: ModelRegistry | None = None) -> list[str]:
    """The requested models whose artifacts are missing, altered, or built from other inputs."""
    registry = registry or default_registry()
    try:
        manifest = read_manifest(request.out)
    except ArtifactError:
        return list(request.models)
    stale = []
    for name in request.models:
        record = manifest.models.get(name)
        if record is None or record.fingerprint != fingerprint(registry[name], request):
            stale.append(name)
            continue
        for variant in record.variants.values():
            path = request.out / variant.file
            if not path.exists() or sha256_path(path) != variant.sha256:
                stale.append(name)
                break
    return stale


def build_artifacts(
    request: BuildRequest, registry: ModelRegistry | None = None, progress: bool = False
) -> Manifest:
    """Build ``request.models`` into ``request.out`` atomically and return the new manifest."""
    registry = registry or default_registry()
    specs = [registry[name] for name in request.models]
    request.out.parent.mkdir(parents=True, exist_ok=True)
    _remove_abandoned_staging(request.out)
    staging = Path(tempfile.mkdtemp(dir=request.out.parent, prefix=f".{request.out.name}.staging-"))
    try:
        kept = _keep_previous(request, staging, {s.name for s in specs})
        records = dict(kept)
        for spec in tqdm(
            specs, desc="artifacts", unit="model", disable=not progress, file=sys.stderr
        ):
            records[spec.name] = _build_model(spec, request, staging)
        ordered = {n: records[n] for n in registry.names() if n in records}
        manifest = Manifest(tools=tool_versions(), models=ordered)
        write_manifest(staging, manifest)
        replace_tree(staging, request.out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return manifest


def _remove_abandoned_staging(out: Path) -> None:
    # A build killed outright (SIGKILL, power loss) cannot clean up after itself; its staging
    # folder sits beside the output, never inside it, and is removed by the next build.
    for leftover in out.parent.glob(f".{out.name}.staging-*"):
        shutil.rmtree(leftover, ignore_errors=True)


def _keep_previous(request: BuildRequest, staging: Path, rebuilt: set[str]) -> dict:
    """Copy models that are not being rebuilt from the previous build into the staging folder."""
    try:
        previous = read_manifest(request.out)
    except ArtifactError:
        return {}
    kept = {}
    for name, record in previous.models.items():
        if name in rebuilt or not (request.out / name).is_dir():
            continue
        shutil.copytree(request.out / name, staging / name)
        kept[name] = record
    return kept


def _build_model(spec: ModelSpec, request: BuildRequest, staging: Path) -> ModelRecord:
    weights = resolve_weights(spec, request.policy, request.weights_dir, request.seed)
    model = weights.build_model()
    folder = staging / spec.name
    folder.mkdir()
    fixed = onnx_export.temporary_onnx_path(staging, spec.name)
    try:
        onnx_export.export_onnx(
            model, spec, artifact_path(staging, spec.name, "baseline"), spec.baseline_dynamic
        )
        onnx_export.export_onnx(model, spec, fixed, spec.fixed_dynamic)
        onnx_export.optimize_onnx(fixed, artifact_path(staging, spec.name, "optimized"))
        onnx_export.convert_fp16(
            artifact_path(staging, spec.name, "optimized"),
            artifact_path(staging, spec.name, "optimized_fp16"),
        )
        fixed_outputs = onnx_export.describe_onnx(fixed)[1]
    finally:
        fixed.unlink(missing_ok=True)
    coreml_export.convert_coreml(model, spec, artifact_path(staging, spec.name, "coreml"))
    variants = {
        "baseline": _onnx_record(
            staging,
            spec,
            "baseline",
            "float32",
            {
                "dynamic_axes": spec.baseline_dynamic,
                "opset": onnx_export.OPSET,
                "constant_folding": True,
            },
        ),
        "optimized": _onnx_record(
            staging,
            spec,
            "optimized",
            "float32",
            {
                "dynamic_axes": spec.fixed_dynamic,
                "opset": onnx_export.OPSET,
                "constant_folding": True,
                "ort_offline_optimization": onnx_export.ORT_OFFLINE_LEVEL,
            },
        ),
        "optimized_fp16": _onnx_record(
            staging,
            spec,
            "optimized_fp16",
            "float16",
            {
                "dynamic_axes": spec.fixed_dynamic,
                "opset": onnx_export.OPSET,
                "keep_io_types": True,
                "fp32_ops": list(onnx_export.FP16_BLOCKED_OPS),
            },
        ),
        "coreml": _coreml_record(staging, spec, fixed_outputs),
    }
    return ModelRecord(
        family=spec.family,
        params=sum(p.numel() for p in model.parameters()),
        weights=weights.source,
        fingerprint=fingerprint(spec, request),
        variants=variants,
    )


def _onnx_record(
    staging: Path, spec: ModelSpec, variant: str, precision: str, settings: dict
) -> VariantRecord:
    path = artifact_path(staging, spec.name, variant)
    inputs, outputs = onnx_export.describe_onnx(path)
    converter = {
        "name": "torch.onnx.export (TorchScript exporter)",
        "torch": metadata.version("torch"),
        "onnx": metadata.version("onnx"),
    }
    if variant != "baseline":
        converter["onnxruntime"] = metadata.version("onnxruntime")
    return VariantRecord(
        file=path.relative_to(staging).as_posix(),
        format="onnx",
        sha256=sha256_path(path),
        size=size_of(path),
        precision=precision,
        converter=converter,
        settings={k: _jsonable(v) for k, v in settings.items()},
        inputs=inputs,
        outputs=outputs,
    )


def _coreml_record(
    staging: Path, spec: ModelSpec, fixed_outputs: tuple[TensorInfo, ...]
) -> VariantRecord:
    path = artifact_path(staging, spec.name, "coreml")
    inputs, outputs = coreml_export.describe_coreml(path)
    # An mlprogram's spec does not declare output shapes; they are those of the fixed export.
    shapes = {t.name: t.shape for t in fixed_outputs}
    outputs = tuple(TensorInfo(t.name, shapes[t.name], t.dtype) for t in outputs)
    return VariantRecord(
        file=path.relative_to(staging).as_posix(),
        format="mlpackage",
        sha256=sha256_path(path),
        size=size_of(path),
        precision=coreml_export.PRECISION,
        converter={
            "name": "coremltools.convert (from torch.jit.trace)",
            "coremltools": metadata.version("coremltools"),
            "torch": metadata.version("torch"),
        },
        settings={
            "convert_to": "mlprogram",
            "compute_precision": coreml_export.PRECISION,
            "compute_units": coreml_export.COMPUTE_UNITS,
            "minimum_deployment_target": coreml_export.DEPLOYMENT_TARGET,
            "flexible_axes": _jsonable(spec.fixed_dynamic),
        },
        inputs=inputs,
        outputs=outputs,
    )


def _jsonable(value: object) -> object:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value
