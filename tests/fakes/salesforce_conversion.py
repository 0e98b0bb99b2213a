"""Lead conversion in the fake org, as the SOAP ``convertLead`` call does it
(SOAP API Developer Guide, ``convertLead()``): an account (or the given one), a contact
and, unless told not to, an opportunity in the first stage, owned by the given user or
the lead's owner (a queue cannot own them); the lead becomes converted, with the
converted status and the three ids, and no longer changes."""

from __future__ import annotations

from tests.fakes.salesforce_org import OPPORTUNITY_STAGES, SalesforceOrg
from tests.fakes.salesforce_schema import ApiError, Field, Record, normal_id


def convert_lead(
    org: SalesforceOrg,
    lead_id: str,
    *,
    converted_status: str | None,
    owner_id: str | None,
    account_id: str | None,
    opportunity_name: str | None,
    create_opportunity: bool,
    user_id: str,
) -> Record:
    """The new records' ids (``leadId``, ``accountId``, ``contactId``,
    ``opportunityId``); ``ApiError`` for what ``convertLead`` reports as an error."""
    with org.lock:
        lead = org.find("Lead", lead_id)
        if lead is None:
            raise ApiError(
                400, "INVALID_CROSS_REFERENCE_KEY", f"invalid cross reference id: {lead_id}"
            )
        if lead["IsConverted"]:
            raise ApiError(400, "CANNOT_UPDATE_CONVERTED_LEAD", "This lead was already converted.")
        status = next(
            (s for s in org.records["LeadStatus"].values() if s["ApiName"] == converted_status),
            None,
        )
        if status is None or not status["IsConverted"]:
            raise ApiError(400, "INVALID_STATUS", f"invalid convertedStatus: {converted_status}")
        owner = owner_id or lead["OwnerId"]
        if not owner or not owner.startswith("005"):
            raise ApiError(
                400,
                "FIELD_INTEGRITY_EXCEPTION",
                "Converted objects can only be owned by users. If the lead is not owned by "
                "a user, you must specify a user for the Owner field.",
            )
        org.check_reference("Lead", "ownerId", Field("reference", refs=("User",)), owner)
        if account_id:
            org.check_reference(
                "Lead", "accountId", Field("reference", refs=("Account",)), account_id
            )
            account_id = normal_id(account_id)
        else:
            account_id = org.insert(
                "Account",
                {"Name": lead["Company"], "Website": lead["Website"], "OwnerId": owner},
                user_id,
            )
        contact_id = org.insert(
            "Contact",
            {
                "FirstName": lead["FirstName"],
                "LastName": lead["LastName"],
                "Name": lead["Name"],
                "Email": lead["Email"],
                "AccountId": account_id,
                "OwnerId": owner,
            },
            user_id,
        )
        opportunity_id = None
        if create_opportunity:
            first = OPPORTUNITY_STAGES[0][0]
            opportunity_id = org.insert(
                "Opportunity",
                {
                    "Name": (opportunity_name or f"{lead['Company']}-")[:120],
                    "StageName": first,
                    "IsClosed": False,
                    "IsWon": False,
                    "CloseDate": org.now().date(),
                    "AccountId": account_id,
                    "OwnerId": owner,
                    "LeadSource": lead["LeadSource"],
                    **(
                        {"CurrencyIsoCode": "USD"}
                        if "CurrencyIsoCode" in org.schema["Opportunity"]
                        else {}
                    ),
                },
                user_id,
            )
        org.touch(
            "Lead",
            lead["Id"],
            {
                "IsConverted": True,
                "Status": status["ApiName"],
                "ConvertedDate": org.now().date(),
                "ConvertedAccountId": account_id,
                "ConvertedContactId": contact_id,
                "ConvertedOpportunityId": opportunity_id,
            },
            user_id,
        )
        return {
            "leadId": lead["Id"],
            "accountId": account_id,
            "contactId": contact_id,
            "opportunityId": opportunity_id,
        }
