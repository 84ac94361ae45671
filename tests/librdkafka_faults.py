"""Real librdkafka fatal errors for tests, through librdkafka's own test hook.

`rd_kafka_test_fatal_error` puts a client in the state a real fatal error leaves it in
(e.g. an idempotence sequence gap): `poll()` raises it once, queued messages are purged,
every later `produce()` fails. confluent-kafka does not expose the hook, so it is called
with ctypes on the `rd_kafka_t *` that follows the Python object header of a
`Producer` (confluent-kafka's `Handle` struct).
"""

from __future__ import annotations

import ctypes
from pathlib import Path

import confluent_kafka
from confluent_kafka import KafkaError, Producer

_LIBS = Path(confluent_kafka.__path__[0]).with_name("confluent_kafka.libs")


def _librdkafka() -> ctypes.CDLL:
    (path,) = _LIBS.glob("librdkafka-*.so.1")
    lib = ctypes.CDLL(path)
    lib.rd_kafka_test_fatal_error.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p]
    lib.rd_kafka_test_fatal_error.restype = ctypes.c_int
    return lib


def inject_fatal_error(
    producer: Producer,
    code: int = KafkaError.OUT_OF_ORDER_SEQUENCE_NUMBER,
    reason: str = "injected by a test",
) -> None:
    handle = ctypes.c_void_p.from_address(id(producer) + object.__basicsize__).value
    assert handle, "no rd_kafka_t handle found"
    assert _librdkafka().rd_kafka_test_fatal_error(handle, code, reason.encode()) == 0
