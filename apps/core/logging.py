"""Log filter that masks phone numbers, and a JSON formatter for App Service / Application Insights."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from .phone import mask_in_text


class MaskPhoneNumbersFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not lose the record
            message = str(record.msg)
        record.msg = mask_in_text(message)
        record.args = None
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in ("message_id", "interaction_id", "channel", "contact_id"):
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        if record.exc_info:
            entry["exception"] = mask_in_text(self.formatException(record.exc_info))
        return json.dumps(entry, default=str)
