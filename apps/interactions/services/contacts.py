"""Contacts: get-or-create keyed on the E.164 phone number or the BSUID, and opt-out state."""

from __future__ import annotations

import logging

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from apps.core.phone import InvalidPhoneNumber, mask, phone_normalize

from ..models import Contact

logger = logging.getLogger(__name__)


def phone_or_empty(phone: str) -> str:
    if not phone:
        return ""
    try:
        return phone_normalize(phone)
    except InvalidPhoneNumber:
        logger.warning("ignoring an unusable phone number %s", mask(phone))
        return ""


def _find(phone: str, bsuid: str) -> tuple[Contact | None, Contact | None]:
    query = Q()
    if phone:
        query |= Q(phone=phone)
    if bsuid:
        query |= Q(bsuid=bsuid)
    by_phone = by_bsuid = None
    for contact in Contact.objects.filter(query):
        if phone and contact.phone == phone:
            by_phone = contact
        if bsuid and contact.bsuid == bsuid:
            by_bsuid = contact
    return by_phone, by_bsuid


def contact_resolve(*, channel: str, phone: str = "", bsuid: str = "", profile_name: str = "") -> Contact:
    """The contact for this phone number and/or BSUID, created when new.

    A contact first seen by BSUID and later with phone + BSUID is one contact (the phone is added to it), and
    the other way round. Race-safe: two concurrent first messages end up on one row (the partial unique
    constraints decide, the loser re-reads). `channel` and a non-empty `profile_name` are recorded on it.
    Raises ValueError when neither a usable phone number nor a BSUID is given.
    """
    phone = phone_or_empty(phone)
    bsuid = (bsuid or "").strip()
    if not phone and not bsuid:
        raise ValueError("a contact needs a phone number or a BSUID")
    profile_name = (profile_name or "").strip()[:200]

    for _attempt in range(3):
        by_phone, by_bsuid = _find(phone, bsuid)
        contact = by_bsuid or by_phone
        if by_phone and by_bsuid and by_phone.pk != by_bsuid.pk:
            # Two rows already exist for one person (seen separately before the provider linked them). Keep
            # both rather than merge histories silently; the BSUID row is the stable key.
            logger.warning("contact %s and %s look like the same person", by_phone.pk, by_bsuid.pk)
        changes: dict[str, object] = {}
        if contact is not None:
            if phone and not contact.phone and by_phone is None:
                changes["phone"] = phone
            if bsuid and not contact.bsuid:
                changes["bsuid"] = bsuid
            if profile_name and contact.profile_name != profile_name:
                changes["profile_name"] = profile_name
            if channel and contact.channel != channel:
                changes["channel"] = channel
            if not changes:
                # The common case (a known contact writing again): no write, so no savepoint either.
                return contact
        try:
            with transaction.atomic():
                if contact is None:
                    return Contact.objects.create(
                        phone=phone or None, bsuid=bsuid or None, profile_name=profile_name, channel=channel
                    )
                changes["updated_at"] = timezone.now()
                Contact.objects.filter(pk=contact.pk).update(**changes)
                for name, value in changes.items():
                    setattr(contact, name, value)
                return contact
        except IntegrityError:
            # Someone else created (or linked) the same phone / BSUID just now: read again.
            continue
    raise RuntimeError("contact_resolve could not settle on a contact")  # pragma: no cover


@transaction.atomic
def contact_opt_out(*, contact: Contact) -> Contact:
    """STOP: no more marketing templates and no bot replies until START. Idempotent."""
    now = timezone.now()
    Contact.objects.filter(pk=contact.pk, opted_out_at__isnull=True).update(opted_out_at=now, updated_at=now)
    contact.refresh_from_db(fields=["opted_out_at"])
    return contact


@transaction.atomic
def contact_opt_in(*, contact: Contact) -> Contact:
    """START: undo STOP and a provider-reported marketing opt-out."""
    Contact.objects.filter(pk=contact.pk).update(
        opted_out_at=None, marketing_opted_out_at=None, updated_at=timezone.now()
    )
    contact.refresh_from_db(fields=["opted_out_at", "marketing_opted_out_at"])
    return contact
