"""Import the Java `client.properties` that MSK docs and Spring apps use into `KafkaSettings`.

Users already have a working Java config and JKS stores; re-typing them for librdkafka is
where mistakes happen. Stores are converted to PEM in memory. Keys we do not understand are
an error naming them: silently dropping e.g. `ssl.enabled.protocols` would change behaviour.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import javaproperties
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from adstream.kafka.keystores import read_keystore, read_truststore
from adstream.kafka.settings import KafkaSettings, SecurityMode

SUPPORTED_KEYS = frozenset(
    {
        "bootstrap.servers",
        "client.id",
        "security.protocol",
        "ssl.truststore.location",
        "ssl.truststore.password",
        "ssl.truststore.type",
        "ssl.keystore.location",
        "ssl.keystore.password",
        "ssl.keystore.type",
        "ssl.key.password",
        "ssl.endpoint.identification.algorithm",
        "sasl.mechanism",
        "sasl.jaas.config",
        "sasl.client.callback.handler.class",
    }
)
SCRAM_MODULE = "org.apache.kafka.common.security.scram.ScramLoginModule"
IAM_MODULE_PREFIX = "software.amazon.msk.auth.iam."
IAM_CALLBACK_HANDLER = "software.amazon.msk.auth.iam.IAMClientCallbackHandler"
_MSK_HOST_REGION = re.compile(
    r"\.kafka(?:-serverless)?\.([a-z]{2}(?:-[a-z]+)+-\d+)\.amazonaws\.com"
)
_JAAS = re.compile(
    r"^\s*(?P<module>[\w.$]+)\s+(?P<flag>required|requisite|sufficient|optional)"
    r"(?P<options>.*?);\s*$",
    re.DOTALL,
)
_JAAS_OPTION = re.compile(r'\s*([\w.-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^\s";]+)')
HOSTNAME_KEY = "ssl.endpoint.identification.algorithm"

log = logging.getLogger(__name__)


class JavaPropertiesError(ValueError):
    """The properties file cannot be mapped; the message names the offending key(s)."""

    def __init__(self, message: str, keys: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.keys = keys


@dataclass(frozen=True)
class JaasConfig:
    """One login module of a `sasl.jaas.config` value and its options."""

    module: str
    options: dict[str, str]


def parse_jaas(value: str) -> JaasConfig:
    """Parse `Module required key="value" ...;` (one login module, as Kafka clients allow)."""
    match = _JAAS.match(value)
    if match is None:
        raise JavaPropertiesError("sasl.jaas.config is not `<LoginModule> required ...;`")
    rest = match["options"]
    options: dict[str, str] = {}
    pos = 0
    while rest[pos:].strip():
        option = _JAAS_OPTION.match(rest, pos)
        if option is None:
            raise JavaPropertiesError(f"sasl.jaas.config: cannot parse options near {rest[pos:]!r}")
        raw = option[2]
        if raw.startswith('"'):
            raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
        options[option[1]] = raw
        pos = option.end()
    return JaasConfig(module=match["module"], options=options)


def read_properties(path: Path) -> dict[str, str]:
    """Parse Java .properties: comments, `=`/`:`/space separators, escapes, continuations."""
    with path.open(encoding="utf-8") as handle:
        return dict(javaproperties.load(handle))


def from_java_properties(path: Path, *, iam_region: str | None = None) -> KafkaSettings:
    """Build validated settings from a Java client.properties file.

    Relative store paths resolve against the file's folder. For IAM the region is taken from
    `iam_region`, else from MSK broker host names (`*.kafka.<region>.amazonaws.com`).
    """
    props = read_properties(path)
    unsupported = tuple(sorted(set(props) - SUPPORTED_KEYS))
    if unsupported:
        raise JavaPropertiesError(
            f"{path}: unsupported key(s): {', '.join(unsupported)}", keys=unsupported
        )
    if "bootstrap.servers" not in props:
        raise JavaPropertiesError(f"{path}: bootstrap.servers is required", ("bootstrap.servers",))
    values: dict[str, Any] = {"bootstrap_servers": props["bootstrap.servers"]}
    if "client.id" in props:
        values["client_id"] = props["client.id"]
    values.update(_security(props, path, iam_region))
    values.update(_stores(props, path.parent))
    values.update(_hostname_check(props, path))
    return _validated(values)


class JavaPropertiesSettings(KafkaSettings):
    """Settings read from a properties file alone: `ADSTREAM_KAFKA_*` variables must not mix in."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def _validated(values: dict[str, Any]) -> KafkaSettings:
    return JavaPropertiesSettings(**values)


def _security(props: dict[str, str], path: Path, iam_region: str | None) -> dict[str, Any]:
    protocol = props.get("security.protocol", "PLAINTEXT").upper()
    mechanism = props.get("sasl.mechanism", "").upper()
    if protocol == "PLAINTEXT":
        return {"security": SecurityMode.PLAINTEXT}
    if protocol == "SSL":
        has_keystore = "ssl.keystore.location" in props
        return {"security": SecurityMode.MTLS if has_keystore else SecurityMode.TLS}
    if protocol != "SASL_SSL":
        raise JavaPropertiesError(
            f"{path}: security.protocol={protocol} is not supported (MSK uses SSL or SASL_SSL)",
            ("security.protocol",),
        )
    if "ssl.keystore.location" in props:
        raise JavaPropertiesError(
            f"{path}: ssl.keystore.location with SASL_SSL: adstream authenticates with one "
            "method; use security.protocol=SSL for mTLS",
            ("ssl.keystore.location",),
        )
    if "sasl.jaas.config" not in props:
        raise JavaPropertiesError(f"{path}: SASL_SSL needs sasl.jaas.config", ("sasl.jaas.config",))
    jaas = parse_jaas(props["sasl.jaas.config"])
    if mechanism.startswith("SCRAM-"):
        return _scram(jaas, mechanism, path)
    if mechanism in ("AWS_MSK_IAM", "OAUTHBEARER") and jaas.module.startswith(IAM_MODULE_PREFIX):
        return _iam(props, jaas, path, iam_region)
    raise JavaPropertiesError(
        f"{path}: sasl.mechanism={mechanism or '(unset)'} with {jaas.module} is not supported "
        "(use SCRAM-SHA-512 or AWS_MSK_IAM)",
        ("sasl.mechanism",),
    )


def _scram(jaas: JaasConfig, mechanism: str, path: Path) -> dict[str, Any]:
    if jaas.module != SCRAM_MODULE:
        raise JavaPropertiesError(
            f"{path}: {mechanism} needs {SCRAM_MODULE} in sasl.jaas.config", ("sasl.jaas.config",)
        )
    extra = sorted(set(jaas.options) - {"username", "password"})
    if extra:
        raise JavaPropertiesError(
            f"{path}: unsupported sasl.jaas.config option(s): {', '.join(extra)}", tuple(extra)
        )
    return {
        "security": SecurityMode.SCRAM,
        "scram_mechanism": mechanism,
        "scram_username": jaas.options.get("username"),
        "scram_password": jaas.options.get("password"),
    }


def _iam(
    props: dict[str, str], jaas: JaasConfig, path: Path, iam_region: str | None
) -> dict[str, Any]:
    handler = props.get("sasl.client.callback.handler.class", IAM_CALLBACK_HANDLER)
    if not handler.startswith(IAM_MODULE_PREFIX):
        raise JavaPropertiesError(
            f"{path}: sasl.client.callback.handler.class={handler} is not the MSK IAM handler",
            ("sasl.client.callback.handler.class",),
        )
    known = {"awsProfileName", "awsRoleArn", "awsRoleSessionName", "awsDebugCreds"}
    extra = sorted(set(jaas.options) - known)
    if extra:
        raise JavaPropertiesError(
            f"{path}: unsupported sasl.jaas.config option(s): {', '.join(extra)}", tuple(extra)
        )
    region = iam_region or _region_from_hosts(props["bootstrap.servers"])
    values: dict[str, Any] = {"security": SecurityMode.IAM, "iam_region": region}
    if "awsProfileName" in jaas.options:
        values["iam_profile"] = jaas.options["awsProfileName"]
    if "awsRoleArn" in jaas.options:
        values["iam_role_arn"] = jaas.options["awsRoleArn"]
    if "awsRoleSessionName" in jaas.options:
        values["iam_session_name"] = jaas.options["awsRoleSessionName"]
    return values


def _hostname_check(props: dict[str, str], path: Path) -> dict[str, Any]:
    """``https`` (Java's default) checks the broker's host name against its certificate;
    an empty value is Java's way to turn that off. It is carried over as
    ``verify_hostname=False``, never silently: any server with a certificate from a trusted
    CA could then pose as the broker. Any other value is an error, not a guess."""
    algorithm = props.get(HOSTNAME_KEY, "https").strip()
    if algorithm.lower() == "https":
        return {}
    if algorithm:
        raise JavaPropertiesError(
            f"{path}: {HOSTNAME_KEY}={algorithm} is not supported: use https (check the broker's "
            "host name) or an empty value (do not check it)",
            (HOSTNAME_KEY,),
        )
    log.warning(
        "%s: %s is empty, so the broker's host name is NOT checked against its certificate "
        "(verify_hostname=false): any server with a certificate from a trusted CA can pose "
        "as the broker and read or alter the traffic (man in the middle). Remove the line to "
        "check host names.",
        path,
        HOSTNAME_KEY,
    )
    return {"verify_hostname": False}


def _region_from_hosts(servers: str) -> str | None:
    match = _MSK_HOST_REGION.search(servers)
    return match[1] if match else None


def _resolve(folder: Path, location: str) -> Path:
    path = Path(location).expanduser()
    return path if path.is_absolute() else folder / path


def _stores(props: dict[str, str], folder: Path) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if "ssl.truststore.location" in props:
        values["ca_pem"] = read_truststore(
            _resolve(folder, props["ssl.truststore.location"]),
            props.get("ssl.truststore.type"),
            props.get("ssl.truststore.password"),
        )
    if "ssl.keystore.location" in props:
        identity = read_keystore(
            _resolve(folder, props["ssl.keystore.location"]),
            props.get("ssl.keystore.type"),
            props.get("ssl.keystore.password"),
            props.get("ssl.key.password"),
        )
        values["cert_pem"] = identity.cert_pem
        values["key_pem"] = identity.key_pem
    return values
