"""Turning failures of a step into Temporal failures, in one place.

Every activity is wrapped by ``classified``: an error that will repeat on retry becomes a
non-retryable ``ApplicationError`` (the workflow puts it on the lead's timeline and raises
the needs-attention flag), anything else is retried with backoff. Messages that leave an
activity never carry a lead's data: the original exception is not chained, and database
messages are cut to their first line (values are already hidden by ``hide_parameters``).

::

    Exception
    ├── ApplicationError            already classified: passed through
    ├── ConnectorError              the CRM's own classification (to_application_error)
    ├── permanent                   pydantic ValidationError, ValueError, TypeError,
    │                               KeyError, sqlalchemy DataError, a StatementError
    │                               around a ValueError of a bound value
    └── retryable                   everything else (OperationalError, IntegrityError,
                                    timeouts, OSError)
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import timedelta
from typing import ParamSpec, TypeVar

from pydantic import ValidationError
from sqlalchemy import exc as sa_exc
from temporalio.exceptions import ApplicationError

from connectors.base import ConnectorError, PermanentError, RetryableError

P = ParamSpec("P")
R = TypeVar("R")

# An IntegrityError stays retryable: two tries of one step racing on an idempotency key
# collide once, and the next try finds the step done.
PERMANENT_DB_ERRORS = (sa_exc.DataError,)


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


def permanent_error(err: BaseException) -> ApplicationError | None:
    """The non-retryable failure for ``err``, or None when a retry may succeed."""
    if isinstance(err, ValidationError):
        fields = ", ".join(sorted({".".join(map(str, e["loc"])) or "?" for e in err.errors()}))
        return _permanent("ValidationError", f"invalid data in {err.title}: {fields}")
    if isinstance(err, PERMANENT_DB_ERRORS):
        return _permanent(type(err).__name__, _first_line(err.orig))
    if isinstance(err, sa_exc.StatementError) and isinstance(err.orig, ValueError | TypeError):
        return _permanent(type(err.orig).__name__, "a value could not be stored")
    if isinstance(err, ValueError | TypeError | KeyError):
        return _permanent(type(err).__name__, f"{type(err).__name__} in the step")
    return None


def classified(fn: Callable[P, R]) -> Callable[P, R]:
    """Wrap an activity so that its errors are classified as above."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except (ApplicationError, ConnectorError):
            raise
        except Exception as err:
            failure = permanent_error(err)
            if failure is None:
                raise
        raise failure  # outside the handler: the original (with its data) is not chained

    return wrapper


def _permanent(kind: str, message: str) -> ApplicationError:
    return ApplicationError(message, type=kind, non_retryable=True)


def _first_line(err: object) -> str:
    text = str(err).strip().splitlines()
    return (text[0] if text else type(err).__name__)[:200]
