"""Domain: finding a catalog entry by name, and saying what it lacks.

Resolution order: exact ``provider/model``, then an alias, then a bare id (the first entry in catalog order wins
when two vendors serve the same id), each tried exactly and then case-insensitively. Nothing here knows which vendors
are configured or how the catalog file is read: the registry service applies these rules to the enabled entries.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence

from attrs import frozen

from domain.catalog import ModelSpec
from domain.errors import CapabilityError, NotFoundError

__all__ = ["ModelIndex", "closest_names", "require_capability"]


def closest_names(name: str, candidates: Iterable[str], *, limit: int = 5) -> list[str]:
    """The known names most similar to ``name`` (difflib ratio, case-insensitive), best first."""
    pool = sorted(set(candidates))
    lowered = {c.lower(): c for c in pool}
    found = difflib.get_close_matches(name.lower(), list(lowered), n=limit, cutoff=0.5)
    return [lowered[f] for f in found]


@frozen
class ModelIndex:
    """Lookup tables over catalog entries (already filtered to what may be served)."""

    specs: tuple[ModelSpec, ...]

    @classmethod
    def of(cls, specs: Iterable[ModelSpec]) -> ModelIndex:
        """An index over ``specs`` in the given (catalog) order."""
        return cls(tuple(specs))

    def find(self, name: str) -> ModelSpec | None:
        """The entry ``name`` designates, or ``None``."""
        for fold in (False, True):
            target = name.lower() if fold else name
            for keys in (_qualified_key, _alias_keys, _id_key):
                for spec in self.specs:
                    if any((k.lower() if fold else k) == target for k in keys(spec)):
                        return spec
        return None

    def names(self) -> list[str]:
        """Every name that resolves: qualified ids and aliases."""
        out: list[str] = []
        for spec in self.specs:
            out.append(spec.qualified_id)
            out.extend(spec.aliases)
        return out

    def resolve(self, name: str, *, disabled: Sequence[ModelSpec] = ()) -> ModelSpec:
        """The entry for ``name``; ``NotFoundError`` listing the closest known ids otherwise.

        ``disabled`` are catalog entries whose vendor is not configured: naming one gives a clearer message.
        """
        found = self.find(name)
        if found is not None:
            return found
        off = ModelIndex.of(disabled).find(name)
        if off is not None:
            raise NotFoundError(
                f"model {off.qualified_id!r} is in the catalog but its provider {off.provider!r} is not enabled "
                "on this server (configure its API key or base URL)",
                context={"model": name, "provider": off.provider, "reason": "provider_disabled"},
            )
        suggestions = closest_names(name, [*self.names(), *(s.id for s in self.specs)])
        qualified = list(dict.fromkeys(q for s in suggestions if (q := self._qualified(s)) is not None))
        hint = f"; did you mean {', '.join(repr(q) for q in qualified)}?" if qualified else ""
        raise NotFoundError(
            f"unknown model {name!r}{hint} (GET /api/v1/models lists them)",
            context={"model": name, "suggestions": qualified},
        )

    def _qualified(self, name: str) -> str | None:
        found = self.find(name)
        return found.qualified_id if found is not None else None

    def with_capability(self, capability: str) -> list[ModelSpec]:
        """Entries that have ``capability``, in catalog order."""
        return [s for s in self.specs if capability in s.capabilities]


def _qualified_key(spec: ModelSpec) -> tuple[str, ...]:
    return (spec.qualified_id,)


def _alias_keys(spec: ModelSpec) -> tuple[str, ...]:
    return spec.aliases


def _id_key(spec: ModelSpec) -> tuple[str, ...]:
    return (spec.id,)


def require_capability(spec: ModelSpec, capability: str, *, alternatives: Sequence[ModelSpec] = ()) -> None:
    """``CapabilityError`` naming the model, the capability and a few models that have it."""
    if capability in spec.capabilities:
        return
    others = [s.qualified_id for s in alternatives if capability in s.capabilities][:5]
    hint = f"; models with {capability!r}: {', '.join(others)}" if others else ""
    raise CapabilityError(
        spec.qualified_id, capability, f"model {spec.qualified_id!r} does not support {capability!r}{hint}"
    )
