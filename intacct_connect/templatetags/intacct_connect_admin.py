"""Template tags for the admin: ``{% load intacct_connect_admin %}``.

``{% intacct_incidents %}`` renders the banner of an open site-wide incident (Intacct
rejects the site's client credentials) as an admin error message, for staff who may view
connections; nothing otherwise. The app puts it on the admin index (its
``AdminSite.index_template``, set when the site has none); a site with its own index
template adds the tag there.
"""

from __future__ import annotations

from typing import Any

from django import template

from intacct_connect.incidents import credentials_incident, credentials_incident_message

register = template.Library()


@register.inclusion_tag("intacct_connect/admin/incident_banner.html", takes_context=True)
def intacct_incidents(context: template.Context) -> dict[str, Any]:
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.has_perm("intacct_connect.view_connection"):
        return {"message": ""}
    incident = credentials_incident()
    return {"message": credentials_incident_message(incident) if incident else ""}
