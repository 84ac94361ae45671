"""`adstream kafka size`: the largest bound wins, rounded to a multiple of the brokers."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from adstream.cli import app
from adstream.kafka.sizing import SizingInput, suggest_partitions


def test_the_consumer_side_bounds_a_slow_consumer() -> None:
    sizing = suggest_partitions(SizingInput(mb_per_s=20, consumers=2, brokers=3))
    # 20 MB/s x 2 = 40 MB/s: 4 partitions for writes, 8 consumers for reads -> 8 -> 9.
    assert (sizing.by_producers, sizing.by_consumers, sizing.partitions) == (4, 8, 9)


def test_many_consumers_need_as_many_partitions() -> None:
    sizing = suggest_partitions(SizingInput(mb_per_s=1, consumers=10, brokers=4))
    assert sizing.partitions == 12


def test_invalid_input_is_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        suggest_partitions(SizingInput(mb_per_s=0, consumers=1))


def test_the_command_prints_the_count_and_why() -> None:
    result = CliRunner().invoke(app, ["kafka", "size", "--mb-per-s", "20", "--consumers", "2"])
    assert result.exit_code == 0, result.output
    assert "partitions: 9" in result.output
    assert "reads: 40 / 5 MB/s per consumer -> 8 consumer(s)" in result.output
