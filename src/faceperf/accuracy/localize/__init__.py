"""Where a candidate's outputs start to diverge: the first ONNX operation below the SNR floor.

The reference graph and the candidate graph run on the model's fixture inputs with every
intermediate tensor exposed as a graph output (in chunks, to bound memory). Tensors of the two
graphs are paired

- by name, where names survive (ONNX Runtime's optimised graphs and the FP16 converter keep most);
- by structure otherwise: a candidate node whose inputs are paired is paired with the reference
  node of the same op type that reads the paired tensors at the same input slots, with the same
  output shape (so pairing spreads from the graph input through renamed graphs);
- by input slot: a tensor that exists only in the candidate, read where the paired reference node
  reads tensor T, is compared with T (the Gather that a red/blue swap puts in front of the first
  Conv is compared with the reference's graph input).

Identity and float-to-float Cast nodes are not operations: their output is the same tensor as
their input (the FP16 converter's Casts), so values are compared as float32 at the node that
computed them. Each paired tensor gets the suite's SNR (``metrics.snr_db``), worst over the cases.

The first failing operation is the earliest candidate node whose output is below the floor while
every paired input is at or above it, sought only when an output of the graph is below the floor
and only among the nodes that output depends on: the floor is the outputs', and an honest FP16
graph's deep features sit below it where its pooling heads average their noise away. Boolean and
integer tensors (masks, indices) are reported but not judged: their SNR counts flipped decisions;
their float consumers are judged instead. When the graph input already differs, or the first
tensor below the floor stands for the reference's graph input (candidate-only nodes at the
input), the fault is in the pre-processing, not in the graph: ``inputs_differ``.
"""

from faceperf.accuracy.localize.api import localize
from faceperf.accuracy.localize.result import Localization, LocalizeError
from faceperf.accuracy.localize.suite import localize_for_suite

__all__ = ["Localization", "LocalizeError", "localize", "localize_for_suite"]
