# --- intacct_connect: the app and its configuration -------------------------------------
import os

from django.core.exceptions import ImproperlyConfigured


def required(name: str) -> str:
    """The environment variable ``name``, or a clear error naming it when it is not set."""
    value = os.environ.get(name, "")
    if not value:
        raise ImproperlyConfigured(
            f"Set the environment variable {name} (see intacct_connect's docs/installation.rst)."
        )
    return value


INSTALLED_APPS += ["intacct_connect"]

INTACCT_CONNECT = {
    "CLIENT_ID": required("INTACCT_CLIENT_ID"),
    "CLIENT_SECRET": required("INTACCT_CLIENT_SECRET"),
    "SENDER_ID": required("INTACCT_SENDER_ID"),
    # Exactly the redirect URI registered with Sage: the full URL of the callback view,
    # e.g. https://app.example.com/intacct/callback/
    "REDIRECT_URI": required("INTACCT_REDIRECT_URI"),
    # Keys that encrypt tokens at rest, newest first, comma-separated in the variable.
    "TOKEN_KEYS": required("INTACCT_TOKEN_KEYS").split(","),
}
