"""Provider receipts: what the carrier finally said about an SMS that the provider accepted.

A notification is `sent` when the provider accepted the message (Twilio answered the create with a
message SID). That is not delivery: Twilio then hands the message to a carrier, and the carrier's
final word arrives later, as a status callback, `delivered` or `undelivered`. A receipt records that
word on the notification.

Twilio's MessageStatus values (Programmable Messaging, outbound): `accepted` (a Messaging Service is
choosing the sender), `scheduled`, `queued`, `sending`, `sent` (the carrier accepted it), then one of
`delivered` (the carrier confirmed delivery to the handset), `undelivered` (the carrier reported it
could not deliver: a receipt with an ErrorCode such as 30003, unreachable handset) or `failed`
(Twilio could not send it at all). `read` (WhatsApp and RCS only), `partially_delivered`, `canceled`
(a scheduled message cancelled), `receiving` and `received` (inbound) are the others. Only
`delivered`, `undelivered` and `failed` are final for delivery; every other value leaves nothing to
record (`twilio_receipt` returns None), and an unknown value is treated the same way, so a status
Twilio adds later is ignored rather than misread.

Rules the caller applies when it records a receipt:
- a receipt is recorded only on a notification whose `channel_used` is sms and whose
  `provider_message_id` equals the callback's MessageSid (a callback for an earlier round's or
  another channel's message changes nothing);
- a later state never moves back: `delivered` and `undelivered` are final. A second receipt with the
  same final state is a no-op (Twilio retries callbacks); a conflicting one (delivered after
  undelivered, or the reverse) is ignored and logged.
"""

from __future__ import annotations

from enum import StrEnum


class ReceiptStatus(StrEnum):
    DELIVERED = "delivered"  # the carrier confirmed delivery
    UNDELIVERED = "undelivered"  # the carrier (or Twilio) reported it could not deliver


_TWILIO_FINAL = {
    "delivered": ReceiptStatus.DELIVERED,
    "undelivered": ReceiptStatus.UNDELIVERED,
    "failed": ReceiptStatus.UNDELIVERED,  # Twilio could not send it: the recipient never got it
}


def twilio_receipt(message_status: str) -> ReceiptStatus | None:
    """The final state a Twilio MessageStatus reports, or None when it is not final (queued, sent, ...)
    or unknown. Case and surrounding spaces are ignored."""
    return _TWILIO_FINAL.get(message_status.strip().lower())
