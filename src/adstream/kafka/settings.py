"""Typed Kafka client settings for every MSK auth mode, validated when they are loaded.

One object describes how to reach the cluster; the factory and the doctor both read it, so a
setting that works in the doctor works in the app. Invalid combinations fail here, naming the
field, instead of surfacing later as an opaque librdkafka timeout.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Literal, Self

from pydantic import Field, FilePath, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

ENV_PREFIX = "ADSTREAM_KAFKA_"
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")
_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/.+$")


class SecurityMode(StrEnum):
    """How the client authenticates; MSK offers exactly these."""

    PLAINTEXT = "plaintext"
    TLS = "tls"
    MTLS = "mtls"
    SCRAM = "scram"
    IAM = "iam"


def env_name(field: str) -> str:
    """The environment variable that sets `field`, for error messages."""
    return ENV_PREFIX + field.upper()


def split_host_port(server: str) -> tuple[str, int]:
    """Split `host:port` (IPv6 as `[::1]:9092`); raises ValueError naming the bad entry."""
    host, sep, port = server.strip().rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"bootstrap server {server!r} is not host:port")
    return host.strip("[]"), int(port)


class KafkaSettings(BaseSettings):
    """Connection settings: from env (`ADSTREAM_KAFKA_*`), a dotenv file or Java properties."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        extra="forbid",
        frozen=True,
        hide_input_in_errors=True,  # errors would otherwise echo passwords back
    )

    bootstrap_servers: Annotated[tuple[str, ...], NoDecode] = Field(min_length=1)
    security: SecurityMode = SecurityMode.PLAINTEXT
    client_id: str = "adstream"

    # Broker verification. Default CA: the certifi bundle, because MSK brokers present public
    # ACM certificates; the private CA of an MSK cluster only signs *client* certificates.
    ca_file: FilePath | None = None
    ca_pem: str | None = Field(default=None, repr=False)
    verify_hostname: bool = True

    # Client identity for mTLS: PEM files, a PKCS#12 file, or PEM text (e.g. from a JKS keystore).
    cert_file: FilePath | None = None
    key_file: FilePath | None = None
    key_password: SecretStr | None = None
    pkcs12_file: FilePath | None = None
    pkcs12_password: SecretStr | None = None
    cert_pem: str | None = Field(default=None, repr=False)
    key_pem: SecretStr | None = None

    scram_username: str | None = None
    scram_password: SecretStr | None = None
    scram_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256"] = "SCRAM-SHA-512"

    iam_region: str | None = None
    iam_profile: str | None = None
    iam_role_arn: str | None = None
    iam_session_name: str = "adstream"

    @field_validator("bootstrap_servers", mode="before")
    @classmethod
    def _split_servers(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("bootstrap_servers")
    @classmethod
    def _check_servers(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for server in value:
            split_host_port(server)
        return value

    @property
    def uses_tls(self) -> bool:
        """Every mode but plaintext runs over TLS (SSL or SASL_SSL)."""
        return self.security is not SecurityMode.PLAINTEXT

    @model_validator(mode="after")
    def _check_combination(self) -> Self:
        problems = [*self._mode_problems(), *self._stray_problems()]
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _mode_problems(self) -> list[str]:
        mode = self.security
        out: list[str] = []
        if self.ca_file and self.ca_pem:
            out.append("set only one of ca_file and ca_pem")
        if mode is SecurityMode.MTLS:
            out.extend(self._identity_problems())
        if mode is SecurityMode.SCRAM:
            if not self.scram_username:
                out.append(f"security=scram needs scram_username ({env_name('scram_username')})")
            if not self.scram_password or not self.scram_password.get_secret_value():
                out.append(f"security=scram needs scram_password ({env_name('scram_password')})")
        if mode is SecurityMode.IAM:
            out.extend(self._iam_problems())
        return out

    def _identity_problems(self) -> list[str]:
        sources = [
            name
            for name, present in (
                ("cert_file/key_file", self.cert_file or self.key_file),
                ("pkcs12_file", self.pkcs12_file),
                ("cert_pem/key_pem", self.cert_pem or self.key_pem),
            )
            if present
        ]
        if not sources:
            return [
                "security=mtls needs a client certificate: set cert_file + key_file, "
                f"pkcs12_file, or cert_pem + key_pem ({env_name('cert_file')}, ...)"
            ]
        if len(sources) > 1:
            return [f"set one client certificate source, not {' and '.join(sources)}"]
        out = []
        for cert, key in (("cert_file", "key_file"), ("cert_pem", "key_pem")):
            has_cert, has_key = getattr(self, cert) is not None, getattr(self, key) is not None
            if has_cert != has_key:
                missing = key if has_cert else cert
                out.append(f"security=mtls with {cert}/{key} needs {missing}")
        return out

    def _iam_problems(self) -> list[str]:
        out = []
        if not self.iam_region:
            out.append(f"security=iam needs iam_region ({env_name('iam_region')})")
        elif not _REGION.match(self.iam_region):
            out.append(f"iam_region {self.iam_region!r} is not an AWS region like us-east-1")
        if self.iam_profile and self.iam_role_arn:
            out.append("set only one of iam_profile and iam_role_arn")
        if self.iam_role_arn and not _ROLE_ARN.match(self.iam_role_arn):
            out.append(f"iam_role_arn {self.iam_role_arn!r} is not an IAM role ARN")
        return out

    def _stray_problems(self) -> list[str]:
        """Settings of another mode are almost always a mistake in which mode was chosen."""
        groups: dict[str, tuple[SecurityMode, ...]] = {
            "cert_file": (SecurityMode.MTLS,),
            "key_file": (SecurityMode.MTLS,),
            "key_password": (SecurityMode.MTLS,),
            "pkcs12_file": (SecurityMode.MTLS,),
            "pkcs12_password": (SecurityMode.MTLS,),
            "cert_pem": (SecurityMode.MTLS,),
            "key_pem": (SecurityMode.MTLS,),
            "scram_username": (SecurityMode.SCRAM,),
            "scram_password": (SecurityMode.SCRAM,),
            "iam_profile": (SecurityMode.IAM,),
            "iam_role_arn": (SecurityMode.IAM,),
            "ca_file": tuple(m for m in SecurityMode if m is not SecurityMode.PLAINTEXT),
            "ca_pem": tuple(m for m in SecurityMode if m is not SecurityMode.PLAINTEXT),
        }
        out = [
            f"{name} is set but security={self.security.value} does not use it"
            for name, modes in groups.items()
            if getattr(self, name) is not None and self.security not in modes
        ]
        if self.key_password and not (self.key_file or self.key_pem):
            out.append("key_password is set without key_file or key_pem")
        if self.pkcs12_password and not self.pkcs12_file:
            out.append("pkcs12_password is set without pkcs12_file")
        return out
