"""The sustained run for people: frame rate and memory over time, one point a window."""

from __future__ import annotations

from pathlib import Path

from faceperf.bench.throughput.sustained import SustainedRun


def plot_sustained(path: Path, run: SustainedRun) -> Path:
    """``path`` (PNG): frames per second and memory per window, the first and last minutes'
    rates drawn across, titled with the verdict."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    times = [w.start_s + w.seconds / 2 for w in run.windows]
    fig, (rate, memory) = plt.subplots(2, 1, figsize=(8, 5), sharex=True)
    rate.plot(times, [w.fps for w in run.windows], "o-", markersize=3)
    rate.axhline(run.first_minute_fps, color="#2ca02c", linewidth=0.8, label="first minute")
    rate.axhline(run.last_minute_fps, color="#d62728", linewidth=0.8, label="last minute")
    rate.set_ylabel("frames / s")
    rate.legend(fontsize=7)
    memory.plot(times, [w.memory_bytes / 2**20 for w in run.windows], "o-", markersize=3)
    memory.set_ylabel("MiB")
    memory.set_xlabel("seconds into the run (one point per window)")
    fig.suptitle(run.describe()[:110], fontsize=7)
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)
    return path
