"""What an analyst asks of the statistics: a range, a time zone, a grouping and filters."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from django.db.models import Q

GROUP_BY_TIME = ("day", "week")
GROUP_BY_DIMENSION = {"intent": "intent", "template": "template_name", "channel": "channel", "route": "route"}
GROUP_BY_CHOICES = (*GROUP_BY_TIME, *GROUP_BY_DIMENSION)
UTC_ZONES = frozenset({"UTC", "Etc/UTC", "Etc/GMT", "GMT", "Etc/Universal", "Universal", "Zulu", "Etc/Zulu"})


@dataclass(frozen=True)
class StatisticsQuery:
    """[start, end) in aware datetimes; buckets are local days / weeks (Monday) in `tz`."""

    start: datetime
    end: datetime
    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    group_by: str = "day"
    channel: str = ""
    intent: str = ""
    template: str = ""
    route: str = ""

    def filters(self, template_field: str = "template_name") -> Q:
        query = Q()
        if self.channel:
            query &= Q(channel=self.channel)
        if self.intent:
            query &= Q(intent=self.intent)
        if self.template:
            query &= Q(**{template_field: self.template})
        if self.route:
            query &= Q(route=self.route)
        return query
