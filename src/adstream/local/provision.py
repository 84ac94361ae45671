"""The local broker's topics, ACLs, SCRAM users and client quotas: ``deploy/kafka.yaml`` +
``kafka.local.yaml``.

The same file and the same plan/apply code as for MSK (``adstream.kafka.plan``/``apply``),
so local and MSK cannot drift. The local overlay sets replication factor 1, lets the
plaintext listener's ``User:ANONYMOUS`` use ``ad-events`` and ``adstream-dev*`` groups
(local development only: never on MSK), and takes the SCRAM passwords the broker generated
into its ``secrets.json``. ``up`` applies the file without ``--allow-delete``, so it only
ever adds, and a second ``up`` changes nothing. A local cluster (``--brokers 3``) merges
``kafka.local-cluster.yaml`` last, which restores replication factor 3 and
``min.insync.replicas=2``.
"""

from __future__ import annotations

from pathlib import Path

from confluent_kafka.admin import AdminClient

from adstream.kafka.apply import (
    Scope,
    apply_plan,
    check_with_broker,
    read_live_state,
    resolve_passwords,
)
from adstream.kafka.desired_state import (
    DesiredState,
    DesiredStateError,
    PasswordSource,
    default_state_file,
    load_desired_state,
    overlay_path,
    resolve_password,
)
from adstream.kafka.plan import AddUser, compute_plan
from adstream.kafka.quotas import QuotaClient
from adstream.local.secrets import LocalSecrets

LOCAL_ENV = "local"
CLUSTER_ENV = "local-cluster"


class ProvisionError(RuntimeError):
    """The desired state cannot be applied to the local broker; the message says why."""


def local_desired_state(state_file: Path | None = None, brokers: int = 1) -> DesiredState:
    """The base file (default: the project's ``deploy/kafka.yaml``) with its local overlay,
    and for a cluster of more than one broker its ``local-cluster`` overlay after that."""
    base = state_file or default_state_file()
    overlays = [LOCAL_ENV, *([CLUSTER_ENV] if brokers > 1 else [])]
    return load_desired_state([base, *(overlay_path(base, env) for env in overlays)])


def provision(
    admin: AdminClient,
    desired: DesiredState,
    secrets: LocalSecrets,
    timeout: float = 30.0,
    quotas: QuotaClient | None = None,
) -> list[str]:
    """Create what is missing and correct what differs (never deletes); return the SCRAM
    users created, which the caller waits for until they can log in. ``quotas`` (needed when
    the file has a ``quotas`` section) is the admin's quota connection."""

    def password(user: str, source: PasswordSource) -> str:
        if not source.generated:
            return resolve_password(user, source)
        if user not in secrets.scram_passwords:
            raise DesiredStateError(
                f"users[{user}].password: the local broker generates passwords only for "
                f"{', '.join(sorted(secrets.scram_passwords))}"
            )
        return secrets.scram_password(user)

    live = read_live_state(admin, desired, Scope(), timeout, quotas)
    plan = check_with_broker(admin, compute_plan(desired, live), timeout, quotas)
    if plan.refusals:
        raise ProvisionError("the desired state cannot be applied:\n" + plan.render())
    passwords = resolve_passwords(plan, password)
    apply_plan(admin, plan, passwords, timeout, quotas)
    return [c.name for c in plan.of(AddUser)]
