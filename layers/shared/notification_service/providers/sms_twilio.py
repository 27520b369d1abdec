"""SMS over Twilio's Messages API with the twilio package's async client (a batch is not serialised).

With a status callback base (TWILIO_STATUS_CALLBACK_BASE), each message asks Twilio to report its final
state to `callback_url_for(base, notification_id)` (StatusCallback): the provider receipts that
http/twilio_callback.py reads and domain/receipts.py interprets."""

from __future__ import annotations

import asyncio

import aiohttp
from aws_lambda_powertools import Logger
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client

from notification_service.domain.delivery import (
    Commit,
    Delivered,
    DeliveryFailed,
    OutgoingMessage,
    ProviderAnswer,
    no_commit,
)
from notification_service.domain.model import Channel
from notification_service.domain.recipient import InvalidAddress, mask_phone, validate_phone
from notification_service.http.twilio_callback import callback_url_for
from notification_service.providers.per_loop import PerLoop

logger = Logger(child=True)

# Twilio error codes (https://www.twilio.com/docs/api/errors) that no retry will fix for this number.
PERMANENT_CODES = frozenset(
    {
        21211,  # invalid 'To' phone number
        21214,  # 'To' phone number cannot be reached
        21217,  # phone number does not appear to be valid
        21407,  # this phone number type does not support SMS
        21408,  # permission to send an SMS to this region is not enabled
        21610,  # the recipient replied STOP (unsubscribed)
        21612,  # the 'To' number is not currently reachable via SMS
        21614,  # 'To' number is not a valid mobile number
        21617,  # the body exceeds the 1600-character limit
        21635,  # 'To' number cannot be a landline
    }
)
# Our side is wrong: the notification may go out on another channel, and an operator must look.
CONFIGURATION_CODES = frozenset(
    {
        20003,  # authentication failed
        20404,  # the account (or the API base) does not exist
        21212,  # invalid 'From' number
        21606,  # the 'From' number is not a valid, SMS-capable number of this account
        21659,  # 'From' is not a Twilio number
        21703,  # invalid Messaging Service
    }
)
TRANSIENT_CODES = frozenset({20429, 20500, 20503, 30001})


class TwilioSmsProvider:
    channel = Channel.SMS

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        *,
        from_number: str = "",
        messaging_service_sid: str = "",
        api_base: str = "https://api.twilio.com",
        timeout_seconds: float = 10,
        status_callback_base: str = "",
    ) -> None:
        self._account_sid = account_sid
        self._auth_token = auth_token
        self._from = from_number
        self._messaging_service_sid = messaging_service_sid
        self._api_base = api_base.rstrip("/")
        self._timeout = timeout_seconds
        self._status_callback_base = status_callback_base  # empty: no status callbacks requested
        self._client = PerLoop(self._new_client)  # and its aiohttp connection pool

    def _new_client(self) -> Client:
        client = Client(
            self._account_sid, self._auth_token, http_client=AsyncTwilioHttpClient(timeout=self._timeout)
        )
        client.api.base_url = self._api_base
        return client

    async def send(self, message: OutgoingMessage, commit: Commit = no_commit) -> ProviderAnswer:
        try:
            to = validate_phone(message.address)
        except InvalidAddress as exc:
            return DeliveryFailed.permanent(f"invalid phone number: {exc}")
        options = (
            {"messaging_service_sid": self._messaging_service_sid}
            if self._messaging_service_sid
            else {"from_": self._from}
        )
        if self._status_callback_base:  # Twilio reports delivered / undelivered there (receipts)
            options["status_callback"] = callback_url_for(self._status_callback_base, message.notification_id)
        await commit()
        try:
            # the twilio client does not bound a silent server: this does
            sent = await asyncio.wait_for(
                self._client.get().messages.create_async(to=to, body=message.body, **options),
                timeout=self._timeout,
            )
        except TwilioRestException as exc:
            failure = classify(exc.status, exc.code)
            if failure.configuration_error:
                logger.error("Twilio configuration error", extra={"channel": "sms", "reason": failure.reason})
            return failure
        except (TimeoutError, aiohttp.ClientError, TwilioException, OSError) as exc:
            return DeliveryFailed.transient(f"Twilio unreachable: {type(exc).__name__}")
        logger.info("SMS accepted by Twilio", extra={"channel": "sms", "to": mask_phone(to), "sid": sent.sid})
        return Delivered(str(sent.sid))


def classify(status: int, code: int | None) -> DeliveryFailed:
    reason = f"Twilio answered {status}" + (f" (error {code})" if code else "")
    if code in CONFIGURATION_CODES or status == 401:
        return DeliveryFailed.misconfigured(reason)
    if code in PERMANENT_CODES:
        return DeliveryFailed.permanent(reason)
    if code in TRANSIENT_CODES or status == 429 or status >= 500:
        return DeliveryFailed.transient(reason)
    return DeliveryFailed.permanent(reason)  # any other 4xx: the request itself is wrong for this number
