"""Throughput: frames per second of a detector (per frame or batched) and of the Face Mirror
loop."""
