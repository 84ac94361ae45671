"""CloudWatch Logs retention from a profile's day count (jsii enums are not int-valued)."""

from __future__ import annotations

from aws_cdk import aws_logs as logs

_BY_DAYS = {
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
}


def retention_days(days: int) -> logs.RetentionDays:
    """The RetentionDays member for `days` (profiles only allow these values)."""
    return _BY_DAYS[days]
