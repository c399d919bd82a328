"""The baseline gate: perf runs on disk, pooled baselines, the canary, and the comparison
of a run against the committed baseline of its profile."""
