"""A fake clock for timing logic: time moves only when a fake workload says how long it took."""

from __future__ import annotations

from collections.abc import Callable, Iterable


class FakeTime:
    """``clock`` reads the fake time; ``workload`` makes callables that advance it."""

    def __init__(self) -> None:
        self.now = 0.0
        self.reads = 0
        self.calls: list[str] = []

    def clock(self) -> float:
        self.reads += 1
        return self.now

    def workload(self, name: str, durations: Iterable[float]) -> Callable[[], None]:
        """A callable that logs its name and advances the clock by the next duration."""
        durations = iter(durations)

        def run() -> None:
            self.calls.append(name)
            self.now += next(durations)

        return run
