"""The flows registry: conversational flows plug into the inbound pipeline without it importing them.

A flow (booking, identity verification, phone login, …) registers itself once, usually from its app's
`AppConfig.ready()`:

    from apps.interactions.flows import flow_register

    class BookingFlow:
        name = "booking"

        def claims(self, *, message, contact) -> bool:
            # Cheap and side-effect free: an active flow state for the contact, or a trigger word.
            ...

        def handle(self, *, message, contact) -> FlowResult:
            # One step. Replies are created with apps.interactions.services.outbound_text_create /
            # outbound_template_create / outbound_media_create (pass in_reply_to=message), so they are
            # queued and delivered like any other reply, inside the pipeline's transaction.
            return FlowResult(replies=[reply], context={"step": "pick_slot"})

    flow_register(BookingFlow())

The pipeline asks the registered flows in registration order, after opt-out, allow-list and rate limit, and
before intent matching. The first flow whose `claims()` is True handles the message; the Interaction gets
route "flow", `context["flow"] = flow.name` plus the FlowResult's context, and the first reply. An exception
from `handle()` is recorded on the Interaction (success False) and rolls back that message's replies; it
never blocks the contact's next message. Registering the same name again replaces the earlier flow.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from .models import Contact, Message


@dataclass
class FlowResult:
    """What one flow step did: the outbound messages it created (already queued) and what to log."""

    replies: list[Message] = field(default_factory=list)
    context: dict[str, Any] = field(default_factory=dict)
    # When the flow let the step through (e.g. it decided the message was not for it after all), the
    # pipeline continues with intent matching as if no flow had claimed it.
    passed: bool = False


@runtime_checkable
class Flow(Protocol):
    name: str

    def claims(self, *, message: Message, contact: Contact) -> bool: ...

    def handle(self, *, message: Message, contact: Contact) -> FlowResult: ...


_flows: dict[str, Flow] = {}
_guard = threading.Lock()


def flow_register(flow: Flow) -> Flow:
    """Add `flow` (or replace the flow of the same name). Returns it, so it works as a class decorator result."""
    if not getattr(flow, "name", ""):
        raise ValueError("a flow needs a name")
    with _guard:
        _flows[flow.name] = flow
    return flow


def flow_unregister(name: str) -> None:
    with _guard:
        _flows.pop(name, None)


def flows_registered() -> list[Flow]:
    """The registered flows, in registration order."""
    with _guard:
        return list(_flows.values())
