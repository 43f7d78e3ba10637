"""Connect customers' Sage Intacct companies to a Django site over OAuth 2.0."""

__version__ = "0.1.0.dev0"
