"""What the merge gate times: the same work on two artifact sets, opened once each.

Benchmarks, by name:
- ``<model>-<variant>``: one inference on a realistic input (steady state, warm session);
- ``<model>-<variant>-load``: opening the session (graph optimisation, kernel choice);
- ``mtcnn``: the MTCNN cascade over the four 1080p fixture scenes (OpenFace preset);
- ``pipeline``: the Face Mirror loop over the first two frames of the synthetic clip (one with
  detection, one tracked: every stage, about a second a call on a 2-core x86-64 VM).

Both sides get the same input arrays, the same backend and thread count; ``mtcnn`` and
``pipeline`` run on the gated variant (``optimized``, or ``coreml`` on the Core ML backend).

Each side opens several sessions of its artifact and every call picks one at random. Two
sessions of the same file differ in speed by a few percent (where their buffers land in memory):
measured here, six sessions of one P-Net FP16 file spread from x0.993 to x1.022, and one A/A run
of single sessions read P-Net FP16 "x1.044 [1.012, 1.069]". With one session a side, such a
draw is a bias no number of rounds removes, and it can exceed a 3 % threshold; rotating sessions
turns it into noise the interval accounts for, as pyperf's separate worker processes do.
A model or variant on one side only is reported as added or removed, not measured.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from faceperf.artifacts.layout import VARIANTS, Variant
from faceperf.artifacts.manifest import Manifest, read_manifest
from faceperf.bench.ab.duet import CANDIDATE, REFERENCE, DuetWorkers
from faceperf.bench.ab.modes import AB_MODES, AUTO
from faceperf.bench.ab.sequential import Pairing
from faceperf.errors import ArtifactError
from faceperf.fixtures import faces as fixture_faces
from faceperf.fixtures.samples import sample_batch
from faceperf.models.registry import default_registry
from faceperf.pipeline.face_mirror import FaceMirrorLoop
from faceperf.pipeline.mtcnn_detector import OPENFACE_PRESET, MTCNNDetector
from faceperf.pipeline.video import synthetic_frames
from faceperf.runtime.artifact_ref import ArtifactRef
from faceperf.runtime.backends import BackendChoice, backend_name, parse_backend

MTCNN, PIPELINE = "mtcnn", "pipeline"
COMPOSITES = {
    MTCNN: ("mtcnn_pnet", "mtcnn_rnet", "mtcnn_onet"),
    PIPELINE: ("retinaface", "star", "mtl"),
}
LOAD_SUFFIX = "-load"
DEFAULT_VARIANTS = (Variant.OPTIMIZED, Variant.OPTIMIZED_FP16)
COREML_VARIANTS = (Variant.COREML,)
MTCNN_SCENES = ("scene1", "scene2", "scene3", "scene4")
PIPELINE_FRAMES = 2
# Sessions per side: single models, and the composites (which hold three models each).
MODEL_SESSIONS, COMPOSITE_SESSIONS = 3, 2


@dataclass(frozen=True)
class AbRequest:
    """Which benchmarks to run on which two artifact sets.

    Args:
        reference: the base's artifact folder.
        candidate: the pull request's artifact folder.
        models: models and composites (``mtcnn``, ``pipeline``) to judge; None: all.
        variants: variants of the single-model benchmarks (names are parsed into ``Variant``).
        backend: the runtime backend of both sides (``ort-cpu``, ``coreml:CPU_ONLY`` ..., or a
            parsed ``BackendChoice``; kept as its name).
        threads: intra-op threads per session.
        cold_load: also judge session creation per model and variant (off by default: it
            costs a third of the run, and session creation is judged by the speedup floors).
        memory: also judge every benchmark's peak memory and artifact size (bench/ab/footprint).
        mode: how rounds are taken: ``alternating``, ``duet``, or ``auto`` (each benchmark's
            mode from budgets.toml ``[ab.modes]``; alternating where a duet is unavailable).
    """

    reference: Path
    candidate: Path
    models: tuple[str, ...] | None = None
    variants: tuple[Variant, ...] = DEFAULT_VARIANTS
    backend: str = "ort-cpu"  # a BackendChoice is taken too, and stored as its name
    threads: int = 1
    cold_load: bool = False
    memory: bool = True
    mode: str = AUTO

    def __post_init__(self) -> None:
        if self.mode not in (AUTO, *AB_MODES):
            raise ValueError(f"mode {self.mode!r}: expected one of {AUTO}, {', '.join(AB_MODES)}")
        unknown = [v for v in self.variants if v not in VARIANTS]
        if unknown or not self.variants:
            raise ValueError(
                f"variants {[str(v) for v in self.variants]}: expected some of "
                f"{', '.join(VARIANTS)}"
            )
        object.__setattr__(self, "variants", tuple(Variant(v) for v in self.variants))
        if self.threads < 1:
            raise ValueError(f"threads {self.threads}: expected at least 1")
        parse_backend(self.backend)  # a bad name fails here, not after minutes of building
        # Reports and labels record the backend as text, whichever form it came in.
        object.__setattr__(self, "backend", backend_name(self.backend))

    @property
    def gated_variant(self) -> Variant:
        """The variant ``mtcnn`` and ``pipeline`` run on."""
        return Variant.COREML if parse_backend(self.backend).is_coreml else Variant.OPTIMIZED

    def artifact_ref(self, directory: Path, variant: Variant) -> ArtifactRef:
        """One side's ``variant`` on this request's backend and threads."""
        return ArtifactRef(directory, variant, self.backend, self.threads)


@dataclass(frozen=True)
class AbPlan:
    """The benchmarks both sides can run, and what only one side has.

    Args:
        judged: benchmark names, in measuring order.
        added: ``model/variant`` only the candidate has.
        removed: ``model/variant`` only the reference has.
    """

    judged: tuple[str, ...]
    added: tuple[str, ...]
    removed: tuple[str, ...]


def default_variants(backend: str | BackendChoice) -> tuple[Variant, ...]:
    """What the merge gate judges by default: the Core ML packages on the Core ML backend, the
    optimised ONNX variants elsewhere."""
    return COREML_VARIANTS if parse_backend(backend).is_coreml else DEFAULT_VARIANTS


def plan(request: AbRequest, reference: Manifest, candidate: Manifest) -> AbPlan:
    """Match the two manifests: what is judged, added and removed.

    Raises:
        ArtifactError: a requested model is on neither side.
    """
    ref_pairs = _pairs(reference)
    cand_pairs = _pairs(candidate)
    wanted_models = request.models
    if wanted_models is not None:
        known = {m for m, _ in ref_pairs | cand_pairs} | set(COMPOSITES)
        missing = [m for m in wanted_models if m not in known]
        if missing:
            raise ArtifactError(
                f"model(s) {', '.join(map(repr, missing))} in neither artifact set "
                f"({request.reference}, {request.candidate})"
            )

    def wanted(model: str) -> bool:
        return wanted_models is None or model in wanted_models

    both = sorted((m, v) for m, v in ref_pairs & cand_pairs if wanted(m) and v in request.variants)
    judged = [f"{m}-{v}" for m, v in both]
    if request.cold_load:
        judged += [f"{m}-{v}{LOAD_SUFFIX}" for m, v in both]
    for composite, members in COMPOSITES.items():
        present = all((m, request.gated_variant) in ref_pairs & cand_pairs for m in members)
        if wanted(composite) and present:
            judged.append(composite)
    only = sorted(
        f"{m}/{v}" for m, v in cand_pairs ^ ref_pairs if wanted(m) and v in request.variants
    )
    return AbPlan(
        judged=tuple(judged),
        added=tuple(p for p in only if tuple(p.split("/")) in cand_pairs),
        removed=tuple(p for p in only if tuple(p.split("/")) in ref_pairs),
    )


def _pairs(manifest: Manifest) -> set[tuple[str, str]]:
    return {(m, v) for m, record in manifest.models.items() for v in record.variants}


def is_load(name: str) -> bool:
    """True for a session-creation benchmark (``star-optimized-load``)."""
    return name.endswith(LOAD_SUFFIX)


def pairings(
    request: AbRequest,
    names: Sequence[str],
    thresholds: Callable[[str], float],
    workers: DuetWorkers | None = None,
) -> list[Pairing]:
    """Open both sides of every named benchmark (sessions, inputs) and return the calls: in this
    process (alternating), or, for the names ``workers`` holds, in its two workers (duet).

    Every artifact is checked against its manifest's sha256 as it is opened.
    """
    found = []
    for name in names:
        if workers is not None and name in workers.names:
            calls = workers.call(name, REFERENCE), workers.call(name, CANDIDATE)
            together = workers.together(name)
        else:
            calls = side_call(request, name, REFERENCE), side_call(request, name, CANDIDATE)
            together = None
        found.append(Pairing(name, *calls, threshold=thresholds(name), together=together))
    return found


def side_call(request: AbRequest, name: str, side: int) -> Callable[[], object]:
    """One side's call of benchmark ``name`` (``REFERENCE`` or ``CANDIDATE``), opened (and
    checked against its manifest's sha256) now. Both sides' inputs are made the same way, from
    the fixtures, so they are equal whichever process makes them."""
    directory = _sides(request)[side]
    if name == MTCNN:
        make = partial(_mtcnn_call, request, frames=_mtcnn_frames())
        copies = COMPOSITE_SESSIONS
    elif name == PIPELINE:
        make = partial(_pipeline_call, request, frames=_pipeline_frames())
        copies = COMPOSITE_SESSIONS
    elif is_load(name):
        model, variant = name.removesuffix(LOAD_SUFFIX).rsplit("-", 1)
        # Every call creates a fresh session: no placement to rotate.
        return _load_call(request, directory, model, variant)
    else:
        model, variant = name.rsplit("-", 1)
        feeds = _feeds(model, variant)
        make = partial(_inference_call, request, model=model, variant=variant, feeds=feeds)
        copies = MODEL_SESSIONS
    return _rotating([make(directory) for _ in range(copies)], seed=f"{name}/{side}")


def _rotating(calls: list[Callable[[], object]], seed: str) -> Callable[[], object]:
    """One call that runs one of ``calls`` chosen at random (seeded: runs are repeatable).
    Each is called once first: a session's first run initialises it, and is no sample."""
    for call in calls:
        call()
    if len(calls) == 1:
        return calls[0]
    rng = np.random.default_rng(zlib.crc32(seed.encode()))
    return lambda: calls[int(rng.integers(len(calls)))]()


def _sides(request: AbRequest) -> tuple[Path, Path]:
    return request.reference, request.candidate


def _feeds(model: str, variant: str) -> dict[str, np.ndarray]:
    spec = default_registry()[model]
    sample = np.array(sample_batch(model)[:1])
    if variant == Variant.COREML:
        sample = sample.astype(np.float16)
    return {spec.input_name: sample}


def _inference_call(
    request: AbRequest, directory: Path, model: str, variant: str, feeds: dict[str, np.ndarray]
) -> Callable[[], object]:
    runner = request.artifact_ref(directory, variant).open(model)
    return lambda: runner.run(feeds)


def _load_call(
    request: AbRequest, directory: Path, model: str, variant: str
) -> Callable[[], object]:
    ref = request.artifact_ref(directory, variant)
    ref.open(model)  # verify

    def load() -> object:
        return ref.open(model, verify=False)

    return load


def _mtcnn_frames() -> list[np.ndarray]:
    return [fixture_faces.load_image(name) for name in MTCNN_SCENES]


def _mtcnn_call(
    request: AbRequest, directory: Path, frames: list[np.ndarray]
) -> Callable[[], object]:
    # One worker: with two sharing a 2-core runner, every call waits for whichever worker the
    # other side or a background job slowed, and the ratios scatter; the work is the same.
    ref = request.artifact_ref(directory, request.gated_variant)
    detector = MTCNNDetector.open(ref, params=OPENFACE_PRESET, workers=1)
    return lambda: [detector.detect(frame) for frame in frames]


def _pipeline_frames() -> list[np.ndarray]:
    return list(synthetic_frames(PIPELINE_FRAMES))


def _pipeline_call(
    request: AbRequest, directory: Path, frames: list[np.ndarray]
) -> Callable[[], object]:
    loop = FaceMirrorLoop.open(request.artifact_ref(directory, request.gated_variant))
    return lambda: list(loop.run(frames))


def read_sides(request: AbRequest) -> tuple[Manifest, Manifest]:
    """Both manifests; a missing or empty folder is one line naming it and its role."""
    manifests = []
    for role, directory in (("reference", request.reference), ("candidate", request.candidate)):
        if not directory.is_dir():
            raise ArtifactError(f"{role} artifact folder {directory} does not exist")
        if not any(directory.iterdir()):
            raise ArtifactError(f"{role} artifact folder {directory} is empty")
        manifests.append(read_manifest(directory))
    return manifests[0], manifests[1]
