"""CloudFormation custom resource: run `adstream kafka apply` as a one-shot ECS task, wait.

Runs in AWS Lambda (standard library and botocore only; imports nothing of adstream). Create
and Update start the task and wait until it stops: exit 0 succeeds, anything else fails the
resource, so the deploy rolls back before any service runs against a cluster that does not
match deploy/kafka.yaml. Delete does nothing: topics outlive the stack's update history.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

POLL_SECONDS = 10.0
MARGIN_MS = 30_000
"""Stop waiting this long before Lambda's own timeout, so the failure carries a message."""


class EcsClient(Protocol):
    def run_task(self, **kwargs: Any) -> dict[str, Any]: ...

    def describe_tasks(self, **kwargs: Any) -> dict[str, Any]: ...


class ApplyTaskError(RuntimeError):
    """The apply task did not start, did not finish in time, or exited non-zero."""


def handle(
    event: dict[str, Any],
    ecs: EcsClient,
    remaining_ms: Callable[[], int],
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """The custom resource response: PhysicalResourceId and the task's ARN as Data."""
    props = event["ResourceProperties"]
    physical_id = f"{props['Cluster']}/kafka-apply"
    if event["RequestType"] == "Delete":
        return {"PhysicalResourceId": event.get("PhysicalResourceId", physical_id)}
    started = ecs.run_task(
        cluster=props["Cluster"],
        taskDefinition=props["TaskDefinition"],
        launchType="FARGATE",
        count=1,
        startedBy="cloudformation-kafka-apply",
        networkConfiguration={
            "awsvpcConfiguration": {
                "subnets": props["Subnets"],
                "securityGroups": props["SecurityGroups"],
                "assignPublicIp": "DISABLED",
            }
        },
    )
    if started.get("failures") or not started.get("tasks"):
        raise ApplyTaskError(f"kafka apply task did not start: {started.get('failures')}")
    task_arn = str(started["tasks"][0]["taskArn"])
    while remaining_ms() > MARGIN_MS:
        (task,) = ecs.describe_tasks(cluster=props["Cluster"], tasks=[task_arn])["tasks"]
        if task["lastStatus"] == "STOPPED":
            _check_exit(task, task_arn, props.get("LogGroup", "its log group"))
            return {"PhysicalResourceId": physical_id, "Data": {"TaskArn": task_arn}}
        sleep(POLL_SECONDS)
    raise ApplyTaskError(f"kafka apply task {task_arn} still running; see its logs")


def _check_exit(task: dict[str, Any], task_arn: str, logs: str) -> None:
    codes = [c.get("exitCode") for c in task.get("containers", [])]
    if codes and all(code == 0 for code in codes):
        return
    reason = task.get("stoppedReason", "")
    raise ApplyTaskError(
        f"kafka apply task {task_arn} failed (exit codes {codes}; {reason}); "
        f"the plan and the refusal are in {logs}"
    )


def on_event(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry point (the CDK Provider framework's onEvent handler)."""
    from botocore.session import get_session

    ecs = get_session().create_client("ecs")
    return handle(event, ecs, context.get_remaining_time_in_millis)
