"""Core ML on Apple Silicon: compute plans (where each op runs), placement drift, static lint.

Everything that reasons about a plan works on the plain data of ``compute_plan`` and runs
anywhere; only ``plan_macos`` talks to Core ML, and only on macOS 14.4+.
"""
