"""Where one model's weights came from: the typed record that ``resolve_weights`` returns, the
manifest stores per model and the accuracy references copy into their provenance.

Its JSON is ``{"kind": KIND, **detail}``, exactly what the manifest and the references hold:

- ``real``: ``file``, ``sha256`` and, for faceperf's own copy in ``weights/real/``,
  ``committed: true``;
- ``packaged``: ``package``, ``version``, ``wheel_sha256``, ``file_sha256``;
- ``surrogate``: ``seed``, ``method``, ``fitted``, ``calibration_file`` and
  ``calibration_sha256`` (or ``calibrated_on_this_machine``).

Light on purpose (no torch): the manifest and the commands that only read it import it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

KINDS = ("real", "packaged", "surrogate")
# What identifies weights (kind, hashes, seed); not the wording of how they were made.
IDENTITY_KEYS = frozenset(
    {"kind", "seed", "sha256", "calibration_sha256", "wheel_sha256", "file_sha256"}
)


@dataclass(frozen=True)
class WeightSource:
    """Where one model's weights came from.

    Args:
        kind: ``real``, ``packaged`` or ``surrogate`` (a record read from an older file may name
            another kind; it is kept as it is).
        detail: the rest of the JSON, in its order; stored read-only.
    """

    kind: str
    detail: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.kind, str):
            raise TypeError(f"weights kind {self.kind!r}: expected a string")
        if "kind" in self.detail:
            raise ValueError("the weights' detail cannot hold 'kind' (it is the record's kind)")
        object.__setattr__(self, "detail", MappingProxyType(dict(self.detail)))

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> WeightSource:
        """The record of ``doc`` (``to_json`` gives ``doc`` back, ``kind`` first).

        Raises:
            KeyError: ``doc`` has no ``kind``.
            TypeError: ``doc`` is not a JSON object, or its kind is not a string.
        """
        if not isinstance(doc, Mapping):
            raise TypeError(f"weights {doc!r}: expected a JSON object")
        return cls(doc["kind"], {k: v for k, v in doc.items() if k != "kind"})

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, **self.detail}

    # --- the common questions ------------------------------------------------------------------

    @property
    def is_real(self) -> bool:
        return self.kind == "real"

    @property
    def is_packaged(self) -> bool:
        return self.kind == "packaged"

    @property
    def is_surrogate(self) -> bool:
        """Surrogate weights exercise the pipeline but are not real face analysis."""
        return self.kind == "surrogate"

    @property
    def seed(self) -> int | None:
        """A surrogate's seed (None for other kinds)."""
        return self.detail.get("seed")

    @property
    def fitted(self) -> bool:
        """A surrogate fitted to a calibration (not only seeded)."""
        return bool(self.detail.get("fitted"))

    @property
    def file(self) -> str | None:
        """A real checkpoint's file (relative to the repository when committed)."""
        return self.detail.get("file")

    @property
    def committed(self) -> bool:
        """A real checkpoint that is faceperf's own copy in ``weights/real/`` (its ``file`` is
        relative to the repository, not to ``weights/``)."""
        return bool(self.detail.get("committed"))

    @property
    def sha256(self) -> str | None:
        """A real checkpoint's sha256 (None for other kinds: a package has ``wheel_sha256``
        and ``file_sha256``, a surrogate ``calibration_sha256``)."""
        return self.detail.get("sha256")

    @property
    def package(self) -> str | None:
        return self.detail.get("package")

    @property
    def version(self) -> str | None:
        return self.detail.get("version")

    def identity(self) -> dict[str, Any]:
        """What identifies these weights: the kind, the hashes and the seed, not the wording of
        how they were made (two records with equal identities are the same weights)."""
        return {k: v for k, v in self.to_json().items() if k in IDENTITY_KEYS}

    def label(self) -> str:
        """A short name for messages and runner labels: ``surrogate(seed=0)``, ``real``."""
        if self.is_surrogate:
            fitted = "fitted-" if self.fitted else ""
            return f"{fitted}surrogate(seed={self.seed})"
        return self.kind
