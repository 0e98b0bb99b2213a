"""The ASGI app: lead intake, lead status API, health, metrics and the HTML pages."""
