"""The API task gets its key pepper and key document from Secrets Manager; the document
starts empty (every request 401) and the pepper outlives the stack."""

from __future__ import annotations

import json
from typing import Any

import pytest

from adstream.infra.api_keys import EMPTY_KEY_DOCUMENT
from adstream.ingest.keys import KeyFile
from tests.infra.conftest import SynthCache


def _container(s: Any, name: str) -> dict[str, Any]:
    for task in s.resources("AWS::ECS::TaskDefinition").values():
        for container in task["Properties"]["ContainerDefinitions"]:
            if container["Name"] == name:
                return container
    raise AssertionError(f"no container {name}")


@pytest.mark.parametrize("name", ["dev", "prod"])
def test_api_task_reads_pepper_and_keys_from_secrets(synth: SynthCache, name: str) -> None:
    s = synth(name)
    api, aggregator = _container(s, "api"), _container(s, "aggregator")
    env = {e["Name"]: e["Value"] for e in api["Environment"]}
    assert env["ADSTREAM_API_AUTH"] == "keys"
    secrets = {item["Name"] for item in api["Secrets"]}
    assert {"ADSTREAM_API_PEPPER", "ADSTREAM_API_KEYS_JSON"} <= secrets
    aggregator_secrets = {item["Name"] for item in aggregator.get("Secrets", [])}
    assert not aggregator_secrets & {"ADSTREAM_API_PEPPER", "ADSTREAM_API_KEYS_JSON"}
    by_description = {
        r["Properties"]["Description"]: r
        for r in s.resources("AWS::SecretsManager::Secret").values()
        if "ingest API" in r["Properties"].get("Description", "")
    }
    pepper = next(r for d, r in by_description.items() if "ADSTREAM_API_PEPPER" in d)
    keys = next(r for d, r in by_description.items() if "ADSTREAM_API_KEYS_JSON" in d)
    assert pepper["DeletionPolicy"] == "Retain"
    assert pepper["Properties"]["GenerateSecretString"]["PasswordLength"] >= 32
    assert "KmsKeyId" in pepper["Properties"]
    assert "KmsKeyId" in keys["Properties"]
    assert keys["Properties"]["SecretString"] == EMPTY_KEY_DOCUMENT


def test_the_initial_key_document_is_a_valid_empty_key_file() -> None:
    """What the API parses at start: valid, and no key in it."""
    assert KeyFile.parse(EMPTY_KEY_DOCUMENT, "secret").keys == []
    assert json.loads(EMPTY_KEY_DOCUMENT) == {"keys": []}
