"""``localize``: the localisation of one ONNX variant of a model in an artifact folder against
a reference folder's variant, on the model's fixture inputs and at the suite's floor.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

from faceperf.accuracy.localize.execution import DEFAULT_CHUNK_BYTES, Deadline
from faceperf.accuracy.localize.inputs import (
    DEFAULT_CASES,
    SUITE_OUTPUT_VIEWS,
    check_model,
    feeds,
    load_graph,
    model_inputs,
    snr_floor,
)
from faceperf.accuracy.localize.result import Localization
from faceperf.accuracy.localize.verdict import compare_graphs
from faceperf.paths import default_artifacts_dir


def localize(
    candidate: Path,
    model: str,
    variant: str = "optimized",
    *,
    reference: Path | None = None,
    reference_variant: str = "baseline",
    floor_db: float | None = None,
    candidate_context: Callable[[], AbstractContextManager[object]] | None = None,
    cases: int = DEFAULT_CASES,
    max_bytes: int = DEFAULT_CHUNK_BYTES,
    deadline: Deadline | None = None,
) -> Localization:
    """Where ``variant`` of ``model`` in the ``candidate`` folder starts to diverge from
    ``reference_variant`` in ``reference`` (default: the default artifact folder).

    Args:
        candidate: an artifact folder.
        model: a model name of the registry.
        variant: the candidate's ONNX variant.
        reference: the reference artifact folder.
        reference_variant: the reference's ONNX variant.
        floor_db: the SNR floor (default: the accuracy suite's for ``variant``).
        candidate_context: a context in which the candidate's inputs are made (a pipeline
            fault's ``patch``); the reference's are made outside it, before.
        cases: fixture cases to run (each input of batch 1).
        max_bytes: bytes of tensor values held at once (both graphs).
        deadline: raise LocalizeBudgetError once it passes.

    Raises:
        LocalizeError: unknown model, missing folder or artifact, unmatched graphs.
    """
    check_model(model)
    reference = reference or default_artifacts_dir()
    cand_model = load_graph(Path(candidate), model, variant)
    ref_model = load_graph(Path(reference), model, reference_variant)
    floor = snr_floor(model, variant) if floor_db is None else floor_db
    reference_arrays = model_inputs(model, cases)
    context = candidate_context() if candidate_context else contextlib.nullcontext()
    with context:
        candidate_arrays = model_inputs(model, cases)
    return compare_graphs(
        ref_model,
        cand_model,
        feeds(ref_model, reference_arrays),
        feeds(cand_model, candidate_arrays),
        floor,
        model=model,
        variant=variant,
        reference_variant=reference_variant,
        max_bytes=max_bytes,
        deadline=deadline,
        output_view=SUITE_OUTPUT_VIEWS.get(model),
    )
