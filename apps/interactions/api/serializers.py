"""Output serializers shared by several endpoints."""

from __future__ import annotations

from rest_framework import serializers

from ..models import Message, StatusUpdate


class StatusUpdateSerializer(serializers.ModelSerializer):
    class Meta:
        model = StatusUpdate
        fields = ["status", "occurred_at", "error_code", "error_message"]


class MessageSerializer(serializers.ModelSerializer):
    statuses = StatusUpdateSerializer(source="status_updates", many=True, read_only=True)
    in_reply_to = serializers.IntegerField(source="in_reply_to_id", allow_null=True, read_only=True)

    class Meta:
        model = Message
        fields = [
            "id",
            "direction",
            "channel",
            "kind",
            "text",
            "template_name",
            "template_language",
            "status",
            "error_code",
            "error_message",
            "in_reply_to",
            "created_at",
            "received_at",
            "sent_at",
            "delivered_at",
            "read_at",
            "failed_at",
            "statuses",
        ]
        read_only_fields = fields


MESSAGE_EXAMPLE = {
    "id": 912,
    "direction": "out",
    "channel": "acs",
    "kind": "template",
    "text": "Hola Ana, tu reserva de kayak es el 3 de diciembre a las 10:00.",
    "template_name": "booking_confirmation",
    "template_language": "es",
    "status": "read",
    "error_code": "",
    "error_message": "",
    "in_reply_to": 911,
    "created_at": "2026-12-01T09:30:01.120000Z",
    "received_at": "2026-12-01T09:30:01.118000Z",
    "sent_at": "2026-12-01T09:30:02.004000Z",
    "delivered_at": "2026-12-01T09:30:03.310000Z",
    "read_at": "2026-12-01T09:31:40.000000Z",
    "failed_at": None,
    "statuses": [
        {"status": "sent", "occurred_at": "2026-12-01T09:30:02Z", "error_code": "", "error_message": ""},
        {"status": "delivered", "occurred_at": "2026-12-01T09:30:03Z", "error_code": "", "error_message": ""},
        {"status": "read", "occurred_at": "2026-12-01T09:31:40Z", "error_code": "", "error_message": ""},
    ],
}
