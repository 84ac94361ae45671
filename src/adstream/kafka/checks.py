"""Result types of the connection doctor's steps, shared by the network and cluster checks."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Step(StrEnum):
    """Doctor steps, in the order they run: each needs the previous one to pass."""

    DNS = "dns"
    TCP = "tcp"
    TLS = "tls"
    AUTHENTICATION = "authentication"
    METADATA = "metadata"
    AUTHORIZATION = "authorization"


class Status(StrEnum):
    OK = "ok"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class StepResult:
    """What one step found, and for a failure the usual fix."""

    step: Step
    status: Status
    detail: str
    fix: str = ""

    @property
    def ok(self) -> bool:
        return self.status is not Status.FAILED

    @classmethod
    def passed(cls, step: Step, detail: str) -> StepResult:
        return cls(step, Status.OK, detail)

    @classmethod
    def failed(cls, step: Step, detail: str, fix: str) -> StepResult:
        return cls(step, Status.FAILED, detail, fix)

    @classmethod
    def skipped(cls, step: Step, detail: str) -> StepResult:
        return cls(step, Status.SKIPPED, detail)
