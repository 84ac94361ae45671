"""Where a service runs, as its platform states it: never guessed from the environment.

``ADSTREAM_DEPLOYED=true`` (set in the task definitions) turns the local conveniences into
errors: ``adstream aggregate`` then needs a database URL (the SQLite default would count on
the task's ephemeral disk and recount from the topic's start on every deploy), and both
services check at start that their topics exist. ``ADSTREAM_REQUIRE_REPLICATION_FACTOR`` and
``ADSTREAM_REQUIRE_MIN_INSYNC_REPLICAS`` state what the profile promises (3 and 2 on a
three-broker cluster); a topic with less stops the service with exit code 2.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from adstream.kafka.topic_check import TopicRequirements

DEPLOYED_ENV = "ADSTREAM_DEPLOYED"


class DeploymentSettings(BaseSettings):
    """``ADSTREAM_DEPLOYED``, ``ADSTREAM_REQUIRE_REPLICATION_FACTOR``,
    ``ADSTREAM_REQUIRE_MIN_INSYNC_REPLICAS``."""

    model_config = SettingsConfigDict(env_prefix="ADSTREAM_", frozen=True)

    deployed: bool = False
    require_replication_factor: int | None = Field(default=None, ge=1)
    require_min_insync_replicas: int | None = Field(default=None, ge=1)

    def topic_requirements(self) -> TopicRequirements | None:
        """What to check at start; None: nothing (local development, nothing demanded)."""
        rf, isr = self.require_replication_factor, self.require_min_insync_replicas
        if not self.deployed and rf is None and isr is None:
            return None
        return TopicRequirements(replication_factor=rf, min_insync_replicas=isr)
