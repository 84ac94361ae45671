"""How many partitions a topic needs, from target throughput and per-partition limits.

The usual rule (Confluent's "choose the number of partitions"): a topic needs enough
partitions that neither side is the bottleneck at the target rate with headroom,
``max(T/p, T/c)`` where ``p`` is what one partition takes in and ``c`` what one consumer
processes, and at least one partition per consumer instance that should work in parallel
(a group never has more active consumers than partitions). Partitions can be added later
but never removed, and adding them moves keys to other partitions, so size for growth.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class SizingInput:
    mb_per_s: float
    consumers: int
    partition_mb_per_s: float = 10.0
    consumer_mb_per_s: float = 5.0
    headroom: float = 2.0
    brokers: int = 3


@dataclass(frozen=True)
class Sizing:
    partitions: int
    by_producers: int
    by_consumers: int
    by_parallelism: int
    explanation: tuple[str, ...]


def suggest_partitions(given: SizingInput) -> Sizing:
    """The partition count and why, each bound stated with its numbers."""
    if min(given.mb_per_s, given.partition_mb_per_s, given.consumer_mb_per_s) <= 0:
        raise ValueError("throughputs must be positive")
    if given.consumers < 1 or given.brokers < 1 or given.headroom < 1:
        raise ValueError("consumers and brokers must be >= 1, headroom >= 1")
    target = given.mb_per_s * given.headroom
    by_producers = math.ceil(target / given.partition_mb_per_s)
    by_consumers = math.ceil(target / given.consumer_mb_per_s)
    needed = max(by_producers, by_consumers, given.consumers, 1)
    partitions = math.ceil(needed / given.brokers) * given.brokers
    explanation = (
        f"target {given.mb_per_s:g} MB/s x headroom {given.headroom:g} = {target:g} MB/s",
        f"writes: {target:g} / {given.partition_mb_per_s:g} MB/s per partition "
        f"-> {by_producers} partition(s)",
        f"reads: {target:g} / {given.consumer_mb_per_s:g} MB/s per consumer "
        f"-> {by_consumers} consumer(s), each needing its own partition",
        f"parallelism: {given.consumers} consumer instance(s) -> at least {given.consumers}",
        f"largest bound {needed}, rounded up to a multiple of {given.brokers} broker(s) "
        f"so leaders spread evenly -> {partitions}",
        "partitions can grow later but never shrink, and growing moves keys (adIds) to other "
        "partitions; each partition costs broker memory and file handles (MSK caps partitions "
        "per broker by instance size, replicas included)",
    )
    return Sizing(partitions, by_producers, by_consumers, given.consumers, explanation)
