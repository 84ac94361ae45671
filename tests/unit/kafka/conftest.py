"""Fixtures for adstream.kafka unit tests."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.unit.kafka.kafka_testkit import Pki, TlsServer, issue, start_tls_server


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    ca = issue("adstream-test-ca", ca=True)
    other = issue("unrelated-ca", ca=True)
    return Pki(
        folder=tmp_path_factory.mktemp("pki"),
        ca=ca,
        broker=issue("broker", ca, hosts=("localhost", "127.0.0.1")),
        client=issue("adstream-api", ca),
        other_ca=other,
        stranger=issue("stranger", other),
    )


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No ADSTREAM_KAFKA_* or AWS variable of the developer's shell leaks into a test."""
    for name in list(os.environ):
        if name.startswith(("ADSTREAM_KAFKA_", "AWS_")):
            monkeypatch.delenv(name)


@pytest.fixture
def mtls_server(pki: Pki) -> Iterator[TlsServer]:
    """Requires a client certificate signed by `pki.ca`."""
    yield from start_tls_server(pki)


@pytest.fixture
def tls_server(pki: Pki) -> Iterator[TlsServer]:
    """Server authentication only."""
    yield from start_tls_server(pki, require_client_cert=False)
