"""The one way every process connects to Temporal."""

from __future__ import annotations

from temporalio.client import Client, TLSConfig
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RetryConfig

from settings import Settings


async def make_client(
    settings: Settings, target: str | None = None, *, retry: RetryConfig | None = None
) -> Client:
    """A Temporal client with the pydantic data converter, TLS and API key from settings.
    ``retry`` bounds how long a call keeps retrying while the server is unreachable."""
    tls: TLSConfig | bool = False
    if settings.temporal_tls_cert_path and settings.temporal_tls_key_path:
        tls = TLSConfig(
            client_cert=settings.temporal_tls_cert_path.read_bytes(),
            client_private_key=settings.temporal_tls_key_path.read_bytes(),
        )
    elif settings.temporal_tls or settings.temporal_api_key is not None:
        tls = True
    return await Client.connect(
        target or settings.temporal_target,
        namespace=settings.temporal_namespace,
        retry_config=retry,
        data_converter=pydantic_data_converter,
        tls=tls,
        api_key=(
            settings.temporal_api_key.get_secret_value()
            if settings.temporal_api_key is not None
            else None
        ),
    )
