"""The report folder of a perf run: summary.md, results.json, plots, the stage profile."""
