"""The merge gate's explanation of a slower verdict: which artifacts get profiled."""

from __future__ import annotations

from ab_outcomes import outcome
from summary_shape import check_summary_shape

from faceperf.bench.ab.pairings import AbRequest
from faceperf.bench.ab.render import markdown
from faceperf.bench.ab.result import AbResult
from faceperf.bench.ab.run import explain_slower
from faceperf.verdicts import Verdict


def test_a_slowdown_of_byte_identical_artifacts_is_not_blamed_on_an_operation(artifacts_dir):
    # Both sides the same files: whatever made `pipeline` slower, no operation of its models did.
    request = AbRequest(reference=artifacts_dir, candidate=artifacts_dir)
    result = AbResult(
        outcomes=(
            outcome("pipeline", Verdict.SLOWER, 1.06, 1.08, 1.10),
            outcome("star-optimized", Verdict.SAME, 0.99, 1.0, 1.01),
        )
    )
    explained = explain_slower(request, result)
    assert dict(explained.explanations) == {"pipeline": ()}
    text = markdown(explained)
    check_summary_shape(text)
    assert "no artifact of it differs between the two sides (byte-identical files)" in text
    assert explained.to_json()["explanations"] == {"pipeline": []}
