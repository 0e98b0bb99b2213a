"""One module per CRM behind the ``CRM`` protocol of ``connectors.base``."""
