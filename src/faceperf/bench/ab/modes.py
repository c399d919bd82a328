"""How the merge gate takes a benchmark's rounds: the names budgets.toml, the CLI and the
measuring share.

- ``alternating``: both sides in one process on one core, each round an ABBA or BAAB block
  (sequential.py).
- ``duet``: both sides at the same moment in two worker processes pinned to two cores, each
  round two simultaneous samples with the cores swapped between them (duet.py).
"""

ALTERNATING, DUET = "alternating", "duet"
AB_MODES = (ALTERNATING, DUET)
# What `faceperf ab --mode` also takes: each benchmark's mode from budgets.toml [ab.modes].
AUTO = "auto"
