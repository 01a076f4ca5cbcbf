"""Query parameters shared by the statistics and interactions endpoints: a time range and filters."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from rest_framework import serializers

from ..models import Channel, Route
from ..statistics.query import GROUP_BY_CHOICES, StatisticsQuery

DEFAULT_RANGE_DAYS = 30


def _moment(value: str, tz: ZoneInfo, *, end: bool) -> datetime:
    """A date (a whole local day: its start, or for `end` the start of the next day) or an ISO datetime."""
    try:
        day = parse_date(value) if len(value) == 10 else None
    except ValueError:
        day = None
    if day is not None:
        if end:
            day += timedelta(days=1)
        return datetime.combine(day, time.min, tzinfo=tz)
    try:
        moment = parse_datetime(value.replace(" ", "+"))
    except ValueError:
        moment = None
    if moment is None:
        raise serializers.ValidationError("Use a date (YYYY-MM-DD) or an ISO 8601 datetime.")
    return moment if moment.tzinfo else moment.replace(tzinfo=tz)


class RangeFiltersParams(serializers.Serializer):
    start = serializers.CharField(
        required=False, help_text="First day (YYYY-MM-DD, local to tz) or ISO datetime; default 30 days ago."
    )
    end = serializers.CharField(
        required=False, help_text="Last day, included (YYYY-MM-DD), or ISO datetime (excluded); default now."
    )
    tz = serializers.CharField(required=False, default="UTC", help_text="IANA time zone for dates and buckets.")
    channel = serializers.ChoiceField(choices=Channel.choices, required=False)
    intent = serializers.CharField(required=False, max_length=100)
    template = serializers.CharField(required=False, max_length=512)
    route = serializers.ChoiceField(choices=Route.choices, required=False)

    def validate_tz(self, value: str) -> ZoneInfo:
        try:
            return ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise serializers.ValidationError(f"Unknown time zone '{value}'.") from exc

    def validate(self, attrs: dict) -> dict:
        tz = attrs.get("tz") or ZoneInfo("UTC")
        if isinstance(tz, str):
            tz = self.validate_tz(tz)
        errors = {}
        now = timezone.now()
        try:
            end = _moment(attrs["end"], tz, end=True) if attrs.get("end") else now
        except serializers.ValidationError as exc:
            errors["end"], end = exc.detail, now
        default_start = datetime.combine(
            (end.astimezone(tz) - timedelta(days=DEFAULT_RANGE_DAYS - 1)).date(), time.min, tzinfo=tz
        )
        try:
            start = _moment(attrs["start"], tz, end=False) if attrs.get("start") else default_start
        except serializers.ValidationError as exc:
            errors["start"], start = exc.detail, default_start
        if errors:
            raise serializers.ValidationError(errors)
        if start >= end:
            raise serializers.ValidationError({"start": ["start must be before end."]})
        max_days = settings.STATISTICS_MAX_RANGE_DAYS
        if end - start > timedelta(days=max_days):
            raise serializers.ValidationError({"end": [f"The range may span at most {max_days} days."]})
        attrs.update(start=start, end=end, tz=tz)
        return attrs

    def to_query(self, group_by: str = "day") -> StatisticsQuery:
        data = self.validated_data
        return StatisticsQuery(
            start=data["start"],
            end=data["end"],
            tz=data["tz"],
            group_by=group_by,
            channel=data.get("channel", ""),
            intent=data.get("intent", ""),
            template=data.get("template", ""),
            route=data.get("route", ""),
        )


class StatisticsParams(RangeFiltersParams):
    group_by = serializers.ChoiceField(choices=GROUP_BY_CHOICES, required=False, default="day")
