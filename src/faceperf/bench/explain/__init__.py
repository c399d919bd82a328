"""Which operations made a candidate artifact slower: ONNX Runtime's profiler, node by node.

- ``record``: the profile records (per node: operator, shapes, time in every call);
- ``trace``: ORT's profiler trace (JSON) → per node, its time in each call;
- ``graph``: the optimised graph the session ran (node domains);
- ``profile``: sessions with the profiler on, run in alternation, how many calls;
- ``match``: which candidate node is which reference node (name, then shapes in order);
- ``diff``: the explanation: lines per operation, grouped, ranked, with shares and noise;
- ``render``: the headline and the table, apart from the logic;
- ``run``: two artifact folders, one model and variant, through their manifests;
- ``slowest``: one artifact's operators, heaviest first (for a budget it breaks).
"""
