from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from ..statistics.selectors import statistics_compute
from .base import COMMON_ERRORS, ReadApiView, bad_request, error_example
from .params import StatisticsParams

EXAMPLE = {
    "range": {
        "start": "2026-11-01T00:00:00+03:00",
        "end": "2026-11-03T00:00:00+03:00",
        "tz": "Africa/Nairobi",
        "group_by": "day",
    },
    "filters": {"channel": None, "intent": None, "template": None},
    "totals": {
        "interactions": 1200,
        "successes": 1176,
        "success_rate": 0.98,
        "routes": {"ai": 300, "template": 780, "unmatched": 120},
        "share": {"template": 0.65, "ai": 0.25, "unmatched": 0.1, "other": 0.0},
        "latency_ms": {"mean": 412.3, "p50": 180.0, "p95": 1650.0, "p99": 4200.0},
        "delivery": {
            "replies": 1080,
            "pending": 4,
            "sent": 60,
            "delivered": 400,
            "read": 590,
            "failed": 26,
            "failure_rate": 0.0241,
            "top_error_codes": [{"code": "131047", "count": 20}, {"code": "131026", "count": 6}],
        },
        "unique_contacts": 431,
        "unique_contacts_method": "hll",
    },
    "buckets": [
        {
            "key": "2026-11-01",
            "interactions": 640,
            "successes": 630,
            "success_rate": 0.9844,
            "routes": {"ai": 160, "template": 420, "unmatched": 60},
            "replies": 580,
            "replies_failed": 12,
            "latency_p95_ms": 1600.0,
        },
        {
            "key": "2026-11-02",
            "interactions": 560,
            "successes": 546,
            "success_rate": 0.975,
            "routes": {"ai": 140, "template": 360, "unmatched": 60},
            "replies": 500,
            "replies_failed": 14,
            "latency_p95_ms": 1700.0,
        },
    ],
    "rollups": {
        "rolled_up_from": "2026-08-01T00:00:00+00:00",
        "rolled_up_through": "2026-11-02T21:00:00+00:00",
        "segments": [{"source": "hour", "start": "2026-10-31T21:00:00+00:00", "end": "2026-11-02T21:00:00+00:00"}],
    },
}


class StatisticsApi(ReadApiView):
    """Interaction statistics over a time range, bucketed by local day / week or by a dimension."""

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "StatisticsOutput"

        class TotalsSerializer(serializers.Serializer):
            interactions = serializers.IntegerField()
            successes = serializers.IntegerField()
            success_rate = serializers.FloatField(allow_null=True)
            routes = serializers.DictField(child=serializers.IntegerField())
            share = serializers.DictField(child=serializers.FloatField(allow_null=True))
            latency_ms = serializers.DictField(child=serializers.FloatField(allow_null=True))
            delivery = serializers.DictField()
            unique_contacts = serializers.IntegerField()
            unique_contacts_method = serializers.ChoiceField(choices=["hll", "exact"])

        class BucketSerializer(serializers.Serializer):
            key = serializers.CharField(help_text="Local date (day), Monday of the week (week), or the dimension.")
            interactions = serializers.IntegerField()
            successes = serializers.IntegerField()
            success_rate = serializers.FloatField(allow_null=True)
            routes = serializers.DictField(child=serializers.IntegerField())
            replies = serializers.IntegerField()
            replies_failed = serializers.IntegerField()
            latency_p95_ms = serializers.FloatField(allow_null=True)

        range = serializers.DictField()
        filters = serializers.DictField()
        totals = TotalsSerializer()
        buckets = BucketSerializer(many=True)
        rollups = serializers.DictField()

    @extend_schema(
        operation_id="statistics_get",
        summary="Interaction statistics",
        description=(
            "Totals and per-bucket counts, success rate, template / AI / unmatched share, delivery outcome of the "
            "replies (by current status, top error codes), latency percentiles (from fixed log-scale histograms: "
            "within one bucket of the exact value) and unique contacts. Read from hourly and daily rollups for "
            "rolled-up hours and from raw rows for the rest (the current hour), so figures are current. Unique "
            "contacts: a HyperLogLog estimate (±2.3 %) over the UTC days the range touches when at most the "
            "channel filters, an exact count otherwise."
        ),
        parameters=[StatisticsParams],
        responses={
            200: OpenApiResponse(
                OutputSerializer, examples=[OpenApiExample("Two local days", value=EXAMPLE, response_only=True)]
            ),
            **bad_request(
                error_example(
                    "Unknown group_by",
                    "VALIDATION_ERROR",
                    "Invalid input.",
                    {"fields": {"group_by": ['"hour" is not a valid choice.']}},
                ),
                error_example(
                    "Start after end",
                    "VALIDATION_ERROR",
                    "Invalid input.",
                    {"fields": {"start": ["start must be before end."]}},
                ),
            ),
            **COMMON_ERRORS,
        },
        tags=["statistics"],
    )
    def get(self, request: Request) -> Response:
        params = StatisticsParams(data=request.query_params)
        params.is_valid(raise_exception=True)
        return Response(statistics_compute(query=params.to_query(params.validated_data["group_by"])))
