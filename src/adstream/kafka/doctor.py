"""The connection doctor: runs the checks in order and stops at the first failure.

Each step needs the one before it (no TLS without TCP, no SASL without TLS), so the first
failing step is the cause to fix, and the report names it with its usual fix.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from adstream.kafka.checks import Status, Step, StepResult
from adstream.kafka.clustercheck import Operation, check_cluster
from adstream.kafka.keystores import StoreError
from adstream.kafka.netcheck import check_dns, check_tcp, check_tls
from adstream.kafka.settings import KafkaSettings
from adstream.kafka.tls import TlsMaterial, resolve_tls
from adstream.kafka.topics import AD_EVENTS_TOPIC

DEFAULT_REQUIRED = (Operation.DESCRIBE,)


@dataclass(frozen=True)
class Report:
    """All step results, in order; steps after a failure are absent."""

    results: tuple[StepResult, ...]

    @property
    def ok(self) -> bool:
        return all(result.ok for result in self.results)

    @property
    def failure(self) -> StepResult | None:
        return next((r for r in self.results if not r.ok), None)

    def step(self, step: Step) -> StepResult | None:
        return next((r for r in self.results if r.step is step), None)

    def render(self) -> str:
        """Plain text: one line per step, then the failing step and its usual fix."""
        marks = {Status.OK: "ok  ", Status.FAILED: "FAIL", Status.SKIPPED: "skip"}
        lines = [f"[{marks[r.status]}] {r.step.value:<14} {r.detail}" for r in self.results]
        failure = self.failure
        if failure is None:
            lines.append("All checks passed.")
        else:
            lines += ["", f"Failed at step: {failure.step.value}", f"Usual fix: {failure.fix}"]
        return "\n".join(lines)


def run_doctor(
    settings: KafkaSettings,
    *,
    topic: str = AD_EVENTS_TOPIC,
    required: Iterable[Operation] = DEFAULT_REQUIRED,
    timeout: float = 10.0,
) -> Report:
    """Check DNS, TCP, TLS, authentication, metadata and authorization on `topic`."""
    results: list[StepResult] = []

    def done(result: StepResult) -> bool:
        results.append(result)
        return not result.ok

    servers = settings.bootstrap_servers
    if done(check_dns(servers)) or done(check_tcp(servers, timeout)):
        return Report(tuple(results))
    material: TlsMaterial | None = None
    if settings.uses_tls:
        try:
            material = resolve_tls(settings)
        except (StoreError, OSError) as exc:
            done(
                StepResult.failed(
                    Step.TLS, f"cannot load the TLS material: {exc}", "fix the file named above"
                )
            )
            return Report(tuple(results))
        assert material is not None
        if done(check_tls(servers, material, timeout)):
            return Report(tuple(results))
    else:
        done(StepResult.skipped(Step.TLS, "security=plaintext"))
    for result in check_cluster(settings, material, topic, required, timeout):
        if done(result):
            break
    return Report(tuple(results))
