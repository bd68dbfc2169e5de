"""Use case: readiness, i.e. does every configured backing service answer right now."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from attrs import frozen

from ports.health import HealthCheck

__all__ = ["ReadinessReport", "ReadinessService", "ServiceStatus"]


@frozen
class ServiceStatus:
    """One backing service's answer."""

    name: str
    ok: bool
    detail: str = "ok"


@frozen
class ReadinessReport:
    """All answers; ``ready`` only when every service answered."""

    ready: bool
    services: list[ServiceStatus]

    @property
    def down(self) -> list[str]:
        """Names of the services that did not answer."""
        return [s.name for s in self.services if not s.ok]


class ReadinessService:
    """Runs every check concurrently, each bounded by ``timeout_s`` so a hung service reads as down, not as a hang."""

    def __init__(self, checks: Sequence[HealthCheck], timeout_s: float = 2.0) -> None:
        self._checks = list(checks)
        self._timeout_s = timeout_s

    async def _one(self, check: HealthCheck) -> ServiceStatus:
        try:
            await asyncio.wait_for(check.check(), self._timeout_s)
        except TimeoutError:
            return ServiceStatus(check.name, False, f"no answer within {self._timeout_s:g}s")
        except Exception as exc:  # noqa: BLE001 - any failure means "down"; the class name is the useful part
            return ServiceStatus(check.name, False, f"{type(exc).__name__}")
        return ServiceStatus(check.name, True)

    async def report(self) -> ReadinessReport:
        """Check every service."""
        statuses = list(await asyncio.gather(*(self._one(c) for c in self._checks)))
        return ReadinessReport(ready=all(s.ok for s in statuses), services=statuses)
