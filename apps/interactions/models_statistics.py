"""Statistics rollups: what the statistics API reads instead of scanning every Interaction row.

Maintained by `apps.interactions.statistics.services.rollups_refresh` (periodic actor, `rebuild_rollups`).
Each row is a full recomputation of its period from the raw rows, so refreshing twice changes nothing.
Imported at the bottom of apps/interactions/models.py so the models belong to the `interactions` app.
"""

from __future__ import annotations

from django.db import models

# Must equal apps.interactions.statistics.latency.LATENCY_BUCKETS (checked there at import).
LATENCY_COLUMNS = tuple(f"latency_{i:02d}" for i in range(29))


class InteractionRollupBase(models.Model):
    """Counts of one period × (channel, intent, template, route).

    `latency_NN` counts interactions whose processing_ms falls in latency bucket NN
    (apps.interactions.statistics.latency.LATENCY_BUCKET_BOUNDS_MS), so percentiles can be read from rollups.
    One integer column per bucket rather than an array or JSON: summing plain columns is what keeps a 90-day
    query fast. `replies_*` count the replies of these interactions by their current status.
    """

    bucket_start = models.DateTimeField()
    channel = models.CharField(max_length=10)
    intent = models.CharField(max_length=100, blank=True)
    template_name = models.CharField(max_length=512, blank=True)
    route = models.CharField(max_length=20)
    interactions = models.PositiveIntegerField(default=0)
    successes = models.PositiveIntegerField(default=0)
    latency_sum_ms = models.BigIntegerField(default=0)
    replies = models.PositiveIntegerField(default=0)
    replies_pending = models.PositiveIntegerField(default=0)
    replies_sent = models.PositiveIntegerField(default=0)
    replies_delivered = models.PositiveIntegerField(default=0)
    replies_read = models.PositiveIntegerField(default=0)
    replies_failed = models.PositiveIntegerField(default=0)
    for _column in LATENCY_COLUMNS:
        locals()[_column] = models.PositiveIntegerField(default=0)
    del _column

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{self.bucket_start:%Y-%m-%d %H:%M} {self.channel} {self.route} {self.intent}: {self.interactions}"


class InteractionHourlyRollup(InteractionRollupBase):
    """One UTC hour. Local days and weeks in any time zone are built from hours."""

    class Meta:
        constraints = [
            # Also the index the statistics query ranges over (bucket_start is its first column).
            models.UniqueConstraint(
                fields=["bucket_start", "channel", "intent", "template_name", "route"], name="rollup_hour_unique"
            ),
        ]


class InteractionDailyRollup(InteractionRollupBase):
    """One UTC day (the sum of its hours): long ranges in UTC read 24 times fewer rows."""

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["bucket_start", "channel", "intent", "template_name", "route"], name="rollup_day_unique"
            ),
        ]


class RollupPeriod(models.TextChoices):
    HOUR = "hour", "Hour"
    DAY = "day", "Day"


class DeliveryErrorRollup(models.Model):
    """Failed replies by provider error code, per period × (channel, intent, template, route)."""

    period = models.CharField(max_length=4, choices=RollupPeriod.choices)
    bucket_start = models.DateTimeField()
    channel = models.CharField(max_length=10)
    intent = models.CharField(max_length=100, blank=True)
    template_name = models.CharField(max_length=512, blank=True)
    route = models.CharField(max_length=20)
    error_code = models.CharField(max_length=40)
    replies = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["period", "bucket_start", "channel", "intent", "template_name", "route", "error_code"],
                name="delivery_error_rollup_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.period} {self.bucket_start:%Y-%m-%d %H:%M} {self.error_code}: {self.replies}"


class ContactDailySketch(models.Model):
    """A HyperLogLog sketch of the contacts that wrote on one UTC day on one channel.

    Unique contacts over a range are estimated by merging the sketches of its days (standard error ≈ 2.3 %),
    see apps.interactions.statistics.hll.
    """

    day = models.DateField()
    channel = models.CharField(max_length=10)
    registers = models.BinaryField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["day", "channel"], name="contact_sketch_unique")]

    def __str__(self) -> str:
        return f"{self.day} {self.channel}"


class RollupState(models.Model):
    """Which hours are rolled up: every hour in [refreshed_from, refreshed_through).

    The statistics API reads raw rows outside that window, so its answers are right immediately.
    """

    name = models.CharField(max_length=40, unique=True)
    refreshed_from = models.DateTimeField(null=True, blank=True)
    refreshed_through = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.name} through {self.refreshed_through}"
