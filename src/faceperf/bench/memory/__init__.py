"""What a model costs besides time: peak memory per phase, leaks over long runs, bytes on disk.

- ``meters``: how this platform's memory is read (Linux resident high-water mark, macOS physical
  footprint, psutil sampling where neither can be reset);
- ``workloads``: what runs: one model call, one MTCNN frame, one Face Mirror frame;
- ``child``: the measuring done in a fresh process, one JSON line on stdout;
- ``peak``: the records and spawning that child for a model or the Face Mirror pipeline;
- ``leak``: long runs sampled, a robust slope after warm-up, plateau told from leak;
- ``longrun``: the long runs of a folder (every model, MTCNN, the pipeline), each in a child;
- ``size``: bytes on disk per artifact, two folders compared, the FP16 ratio;
- ``render``: tables and plots, apart from the logic.
"""
