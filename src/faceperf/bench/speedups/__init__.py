"""Speedups: `optimized` against `baseline` timed interleaved, with FLOP counts, the machine's
matmul peak and the published figures they are read against."""
