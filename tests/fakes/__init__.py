"""HTTP-level fakes of the vendors' APIs (Salesforce, HubSpot), written from their
documentation and driven by the vendors' own client libraries over real HTTP."""
