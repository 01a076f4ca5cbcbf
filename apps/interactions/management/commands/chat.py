"""`python manage.py chat`: talk to Relay from the terminal as a WhatsApp user, through the real pipeline.

Each line is recorded exactly like a sandbox-page message (`events_ingest` on the sandbox channel, processing
enqueued on commit) and the replies are read back from the database. With the stub broker (`make run`'s
default) this process starts its own in-process worker, because stub queues live in one process only; with
Redis the running `rundramatiq` worker answers.
"""

from __future__ import annotations

import time
from typing import cast

import dramatiq
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from dramatiq.brokers.stub import StubBroker

from apps.channels.registry import channel_get
from apps.channels.sandbox import SandboxChannel
from apps.core.phone import InvalidPhoneNumber, phone_normalize
from apps.interactions.apis import message_as_json
from apps.interactions.models import Direction, Message, MessageStatus
from apps.interactions.selectors import conversation_messages
from apps.interactions.services.ingest import events_ingest

TICKS = {"sent": "✓", "delivered": "✓✓", "read": "✓✓ (read)", "failed": "✗ failed"}
# Once processed, how long to wait for a reply that another actor (AI answer) may still be writing.
SETTLE_SECONDS = 1.0


class Command(BaseCommand):
    help = "Chat with Relay in the terminal as a WhatsApp user (sandbox channel, real pipeline)."

    def add_arguments(self, parser):
        parser.add_argument("--phone", default="+254700000001", help="Your pretend WhatsApp number (E.164).")
        parser.add_argument("--name", default="Ana", help="Your WhatsApp profile name.")
        parser.add_argument("--timeout", type=float, default=20.0, help="Seconds to wait for replies.")
        parser.add_argument("--message", "-m", action="append", help="Send this and exit (repeatable).")

    def handle(self, *args, **options):
        if not settings.SANDBOX_ENABLED:
            raise CommandError("The sandbox channel is off: set SANDBOX_ENABLED=true (or DJANGO_DEBUG=true).")
        try:
            phone = phone_normalize(options["phone"])
        except InvalidPhoneNumber as exc:
            raise CommandError(f"--phone: {exc}") from exc
        if isinstance(dramatiq.get_broker(), StubBroker):
            from apps.interactions.worker import inprocess_worker_start

            inprocess_worker_start()
        lines = options.get("message")
        if not lines:
            self.stdout.write(f"Chatting as {options['name']} ({phone}). Empty line or Ctrl-D to quit.")
        for text in lines or self._prompt():
            self._exchange(phone=phone, name=options["name"], text=text, timeout=options["timeout"])

    def _prompt(self):
        while True:
            try:
                text = input("you> ")
            except (EOFError, KeyboardInterrupt):
                self.stdout.write("")
                return
            if not text.strip():
                return
            yield text

    def _exchange(self, *, phone: str, name: str, text: str, timeout: float) -> None:
        event = cast(SandboxChannel, channel_get("sandbox")).inbound_event(phone=phone, text=text, name=name)
        inbound = events_ingest(channel="sandbox", events=[event]).messages[0]
        deadline = time.monotonic() + timeout
        shown: set[int] = set()
        processed_at = None
        while time.monotonic() < deadline:
            # A reply is shown once its send is settled (sent or later), so its ticks mean something.
            settle_by = time.monotonic() > deadline - 2
            replies = [
                m
                for m in conversation_messages(contact=inbound.contact, after_id=inbound.pk)
                if m.direction == Direction.OUTBOUND
                and m.pk not in shown
                and (settle_by or m.status not in (MessageStatus.QUEUED, MessageStatus.SENDING))
            ]
            for reply in replies:
                self._show(reply)
                shown.add(reply.pk)
            if processed_at is None and Message.objects.filter(pk=inbound.pk, status=MessageStatus.PROCESSED).exists():
                processed_at = time.monotonic()
            if processed_at is not None and (shown or time.monotonic() - processed_at > SETTLE_SECONDS):
                if shown:
                    return
                self.stdout.write(self.style.WARNING("relay> (no reply)"))
                return
            time.sleep(0.1)
        self.stdout.write(self.style.WARNING(f"relay> (no reply within {timeout:g} s; is a worker running?)"))

    def _show(self, message: Message) -> None:
        bubble = message_as_json(message)
        label = f"[{bubble['template_name']}] " if bubble["template_name"] else ""
        status = TICKS.get(bubble["status"], bubble["status"])
        self.stdout.write(f"relay> {label}{bubble['text']}  {status}")
        if bubble["error_message"]:
            self.stdout.write(self.style.ERROR(f"       {bubble['error_code']}: {bubble['error_message']}"))
