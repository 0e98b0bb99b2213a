"""The CRM connector ``LEADFLOW_CRM_BACKEND`` names, built from the settings."""

from __future__ import annotations

from connectors.base import CRM
from connectors.local import LocalCRM
from settings import CrmBackend, Settings
from store.db import Database


def make_crm(settings: Settings, db: Database) -> CRM:
    """The configured CRM. A vendor whose settings are incomplete is refused here, with
    the variables to set, before anything starts."""
    if settings.crm_backend is CrmBackend.salesforce:
        from connectors.salesforce import SalesforceCRM

        return SalesforceCRM.from_settings(settings)
    if settings.crm_backend is CrmBackend.hubspot:
        from connectors.hubspot import HubSpotCRM

        return HubSpotCRM.from_settings(settings)
    return LocalCRM(db)
