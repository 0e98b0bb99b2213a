"""Turning connector errors into Temporal failures, in one place."""

from __future__ import annotations

from datetime import timedelta

from temporalio.exceptions import ApplicationError

from connectors.base import ConnectorError, PermanentError, RetryableError


def to_application_error(err: ConnectorError, crm: str) -> ApplicationError:
    """Retryable vendor errors retry (after Retry-After when given); permanent ones stop
    the retries and carry the vendor's message for admins."""
    kind = type(err).__name__
    if isinstance(err, RetryableError):
        return ApplicationError(
            f"{crm}: {err.vendor_message}",
            type=kind,
            non_retryable=False,
            next_retry_delay=(
                timedelta(seconds=err.retry_after) if err.retry_after is not None else None
            ),
        )
    assert isinstance(err, PermanentError)
    return ApplicationError(f"{crm}: {err.vendor_message}", type=kind, non_retryable=True)
