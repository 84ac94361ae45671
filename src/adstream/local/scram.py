"""The local broker's SCRAM users, created through the Admin API over mutual TLS.

Not with ``kafka-storage format --add-scram …password=…``: that puts every password on
the tool's command line, which any local user can read in ``/proc/<pid>/cmdline`` while
it runs. Here the admin client sends them inside the TLS connection instead.
"""

from __future__ import annotations

import time

from confluent_kafka.admin import (
    AdminClient,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialAlteration,
    UserScramCredentialUpsertion,
)

from adstream.local.secrets import LocalSecrets

MECHANISM = ScramMechanism.SCRAM_SHA_512
ITERATIONS = 4096  # Kafka's minimum and its StorageTool default, as MSK uses


def users_with_credentials(admin: AdminClient, timeout: float) -> set[str]:
    """The users the broker holds a SCRAM-SHA-512 credential for."""
    described = admin.describe_user_scram_credentials(request_timeout=timeout)
    found = described.result(timeout)  # type: ignore[union-attr]  # one future when users=None
    return {
        user
        for user, description in found.items()
        if any(info.mechanism == MECHANISM for info in description.scram_credential_infos)
    }


def ensure_scram_users(
    admin: AdminClient, secrets: LocalSecrets, users: tuple[str, ...], timeout: float = 30.0
) -> list[str]:
    """Create the credential of each user the broker lacks, with its password from
    ``secrets``; return the users created once the broker lists them. Users that already
    exist are left alone, so a second ``up`` changes nothing."""
    missing = [user for user in users if user not in users_with_credentials(admin, timeout)]
    if not missing:
        return []
    info = ScramCredentialInfo(MECHANISM, ITERATIONS)
    upserts: list[UserScramCredentialAlteration] = [
        UserScramCredentialUpsertion(user, info, secrets.scram_password(user).encode())
        for user in missing
    ]
    for future in admin.alter_user_scram_credentials(upserts, request_timeout=timeout).values():
        future.result(timeout)
    deadline = time.monotonic() + timeout
    while not set(missing) <= users_with_credentials(admin, timeout):
        if time.monotonic() > deadline:
            raise TimeoutError(f"the broker did not list the SCRAM users {missing} in time")
        time.sleep(0.1)
    return missing
