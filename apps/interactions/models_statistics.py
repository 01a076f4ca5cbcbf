"""Statistics rollups: what the statistics API reads instead of scanning every Interaction row.

Maintained by `apps.interactions.statistics.services.rollups_refresh` (periodic actor, `rebuild_rollups`).
Each row is a full recomputation of its period from the raw rows, so refreshing twice changes nothing.
Imported at the bottom of apps/interactions/models.py so the models belong to the `interactions` app.
"""

from __future__ import annotations

from django.db import models


class InteractionRollupBase(models.Model):
    """Counts of one period × (channel, intent, template, route).

    `latency_histogram[i]` counts interactions whose processing_ms falls in latency bucket i
    (apps.interactions.statistics.latency.LATENCY_BUCKET_BOUNDS_MS), so percentiles can be read from rollups.
    `replies_*` count the replies of these interactions by their current status; `error_codes` maps the
    error code of each failed reply to how many failed with it.
    """

    bucket_start = models.DateTimeField()
    channel = models.CharField(max_length=10)
    intent = models.CharField(max_length=100, blank=True)
    template_name = models.CharField(max_length=512, blank=True)
    route = models.CharField(max_length=20)
    interactions = models.PositiveIntegerField(default=0)
    successes = models.PositiveIntegerField(default=0)
    latency_sum_ms = models.BigIntegerField(default=0)
    latency_histogram = models.JSONField(default=list)
    replies = models.PositiveIntegerField(default=0)
    replies_pending = models.PositiveIntegerField(default=0)
    replies_sent = models.PositiveIntegerField(default=0)
    replies_delivered = models.PositiveIntegerField(default=0)
    replies_read = models.PositiveIntegerField(default=0)
    replies_failed = models.PositiveIntegerField(default=0)
    error_codes = models.JSONField(default=dict, blank=True)

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
