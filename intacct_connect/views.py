"""Thin views: check the tenant and permissions, call :mod:`intacct_connect.flows`, answer.

Every connection lookup is scoped to the request's tenant, so another tenant's
connection is a 404 (never a 403 that would confirm it exists). Every page gets the
adapter's ``logout_url`` (the header's *Sign out* form; None hides it). Actions that
change something are POSTs; GET on ``disconnect`` only shows its confirmation.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.shortcuts import get_object_or_404, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_variables
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from intacct_connect import flows
from intacct_connect.adapter import DefaultIntacctAdapter, get_adapter
from intacct_connect.conf import app_settings
from intacct_connect.exceptions import (
    AuthorizationDenied,
    IntacctConfigurationError,
    IntacctConnectError,
    OAuthStateError,
    TokenRequestError,
    TooManyConnectAttempts,
)
from intacct_connect.models import Connection, ConnectionStatus, GrantType

logger = logging.getLogger(__name__)

#: Error codes shown on error pages (some come from the callback URL): short and plain.
_SAFE_CODE = re.compile(r"[A-Za-z0-9_.:-]{1,60}")


class HttpResponseSeeOther(HttpResponseRedirect):
    status_code = 303


def _no_store(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "no-store"
    response["Referrer-Policy"] = "no-referrer"
    return response


def _tenant(request: HttpRequest) -> tuple[DefaultIntacctAdapter, str | None]:
    adapter = get_adapter()
    return adapter, adapter.get_tenant_key(request)


def _tenant_connection(request: HttpRequest, pk: int) -> tuple[DefaultIntacctAdapter, Connection]:
    adapter, tenant_key = _tenant(request)
    if tenant_key is None:
        raise Http404
    connection = get_object_or_404(Connection.objects.for_tenant(tenant_key), pk=pk)
    if not adapter.can_view(request, connection):
        raise Http404
    return adapter, connection


#: Statuses listed in the collapsed history instead of the main table.
HISTORY_STATUSES = (ConnectionStatus.REVOKED, ConnectionStatus.SUPERSEDED)


def _page_context(request: HttpRequest, adapter: DefaultIntacctAdapter) -> dict[str, Any]:
    """What every tenant page's layout needs (``intacct_connect/base.html``)."""
    get_logout_url = getattr(adapter, "get_logout_url", None)  # duck-typed adapters
    return {
        "logout_url": get_logout_url(request) if get_logout_url else None,
        "connections_url": adapter.get_connections_url(request),
    }


def _can(adapter: DefaultIntacctAdapter, name: str, request: HttpRequest, conn: Connection) -> bool:
    check = getattr(adapter, name, None)
    return bool(check(request, conn)) if check else False


def _can_change_entity(
    adapter: DefaultIntacctAdapter, request: HttpRequest, conn: Connection
) -> bool:
    if conn.grant_type == GrantType.CLIENT_CREDENTIALS:
        return False  # the entity is part of the Web Services username
    if hasattr(adapter, "can_change_entity"):
        return _can(adapter, "can_change_entity", request, conn)
    return _can(adapter, "can_reconnect", request, conn)


def _ensure_session(request: HttpRequest) -> str:
    """The session key the flow is bound to; creates the session if there is none."""
    if not request.session.session_key:
        request.session.save()
        request.session.modified = True  # make SessionMiddleware send the cookie
    key = request.session.session_key
    assert key  # noqa: S101  (save() always sets it)
    return key


def error_page(
    request: HttpRequest, kind: str, *, status: int, code: str = "", **context: Any
) -> HttpResponse:
    """The friendly error page (template ``intacct_connect/error.html``)."""
    adapter = get_adapter()
    context.update(_page_context(request, adapter))
    context.update(
        {
            "kind": kind,
            "code": code if _SAFE_CODE.fullmatch(code) else "",
            "sender_id": app_settings.SENDER_ID,
            # The callback's error page is served at a URL holding the code and state.
            "referrer_policy": "no-referrer",
        }
    )
    response = render(request, "intacct_connect/error.html", context, status=status)
    return _no_store(response)


@require_GET
@never_cache
def connections(request: HttpRequest) -> HttpResponse:
    """The tenant's connections (revoked and superseded ones in a collapsed history), with
    connect / reconnect / default entity / disconnect actions."""
    adapter, tenant_key = _tenant(request)
    if tenant_key is None:
        return redirect_to_login(request.get_full_path())
    visible = [c for c in flows.connections_for_tenant(tenant_key) if adapter.can_view(request, c)]

    def row(conn: Connection) -> dict[str, Any]:
        return {
            "connection": conn,
            "token": flows.token_of(conn),
            "can_reconnect": _can(adapter, "can_reconnect", request, conn),
            "can_disconnect": _can(adapter, "can_disconnect", request, conn),
            "can_change_entity": _can_change_entity(adapter, request, conn),
        }

    context = {
        **_page_context(request, adapter),
        "rows": [row(c) for c in visible if c.status not in HISTORY_STATUSES],
        "history": [row(c) for c in visible if c.status in HISTORY_STATUSES],
        "can_connect": adapter.can_connect(request),
        "sender_id": app_settings.SENDER_ID,
    }
    return render(request, "intacct_connect/connections.html", context)


@require_POST
@never_cache
def connect(request: HttpRequest) -> HttpResponse:
    """Start the authorization-code flow (POST, CSRF-protected) and send the browser to Intacct.

    The default entity is chosen after connecting (:func:`entity`); a posted ``entity`` is
    still accepted."""
    adapter, tenant_key = _tenant(request)
    if tenant_key is None:
        return redirect_to_login(adapter.get_connections_url(request))
    if not adapter.can_connect(request):
        raise PermissionDenied
    try:
        entity_id = flows.clean_entity_id(request.POST.get("entity", ""))
    except ValidationError as err:
        return error_page(request, "bad_request", status=400, detail=" ".join(err.messages))
    next_url = flows.safe_next_url(
        request.POST.get("next") or request.GET.get("next"),
        host=request.get_host(),
        secure=request.is_secure(),
    )
    return _start_connect(request, tenant_key=tenant_key, next_url=next_url, entity_id=entity_id)


@require_POST
@never_cache
def reconnect(request: HttpRequest, pk: int) -> HttpResponse:
    """Authorise an existing connection again; its identity (primary key) is kept."""
    adapter, connection = _tenant_connection(request, pk)
    if not adapter.can_reconnect(request, connection):
        raise PermissionDenied
    if connection.grant_type == GrantType.CLIENT_CREDENTIALS:
        try:
            flows.reconnect_client_credentials(connection, actor=request.user)
        except IntacctConnectError as err:
            return _token_error_page(request, err)
        messages.success(
            request, _("Reconnected %(company)s.") % {"company": connection}, fail_silently=True
        )
        return HttpResponseSeeOther(adapter.get_connections_url(request))
    next_url = flows.safe_next_url(
        request.POST.get("next"), host=request.get_host(), secure=request.is_secure()
    )
    return _start_connect(
        request,
        tenant_key=connection.tenant_key,
        next_url=next_url,
        entity_id=connection.entity_id,
        reconnect=connection,
    )


def _start_connect(request: HttpRequest, **kwargs: Any) -> HttpResponse:
    """Send the browser to Intacct, or answer 429 when the user started too many requests."""
    try:
        started = flows.start_connect(
            session_key=_ensure_session(request), user=request.user, **kwargs
        )
    except TooManyConnectAttempts as err:
        response = error_page(
            request, "rate_limited", status=429, code=err.code or "", retry_after=err.retry_after
        )
        response["Retry-After"] = str(int(err.retry_after or 60))
        return response
    return _no_store(HttpResponseSeeOther(started.authorize_url))


@require_http_methods(["GET", "POST"])
@never_cache
def disconnect(request: HttpRequest, pk: int) -> HttpResponse:
    """GET: the confirmation page. POST: revoke at Intacct (when possible), delete the tokens."""
    adapter, connection = _tenant_connection(request, pk)
    if not adapter.can_disconnect(request, connection):
        raise PermissionDenied
    if request.method != "POST":
        context = {**_page_context(request, adapter), "connection": connection}
        return render(request, "intacct_connect/disconnect.html", context)
    result = flows.disconnect(connection, actor=request.user)
    if result.revoked_at_intacct:
        messages.success(
            request,
            _("Disconnected %(company)s.") % {"company": connection.company_id},
            fail_silently=True,
        )
    else:
        messages.warning(
            request,
            _(
                "Disconnected %(company)s here, but Intacct could not be told; the grant may "
                "stay listed at Intacct until it expires."
            )
            % {"company": connection.company_id},
            fail_silently=True,
        )
    return HttpResponseSeeOther(adapter.get_connections_url(request))


@require_http_methods(["GET", "POST"])
@never_cache
def entity(request: HttpRequest, pk: int) -> HttpResponse:
    """The connection's default entity, chosen from the entities Intacct lists (or top level).

    Reading the entities may fail (Intacct down, connection not active): the page then says
    so (502 / 409) and nothing changes. An entity not in the list is a 400."""
    adapter, connection = _tenant_connection(request, pk)
    if not _can_change_entity(adapter, request, connection):
        raise PermissionDenied
    context: dict[str, Any] = {
        **_page_context(request, adapter),
        "connection": connection,
        "choices": [],
        "selected": connection.entity_id,
    }
    if connection.status != ConnectionStatus.ACTIVE:
        context["problem"] = "inactive"
        return _entity_page(request, context, status=409)
    try:
        choices = flows.company_entities(connection)
    except IntacctConnectError as err:
        logger.warning("Could not list the entities of connection %s: %s", pk, type(err).__name__)
        context.update(problem="intacct", code=_safe_code(err.error_id or err.code or ""))
        return _entity_page(request, context, status=502)
    context["choices"] = choices
    if request.method != "POST":
        return _entity_page(request, context)
    chosen = request.POST.get("entity", "")
    try:
        flows.set_default_entity(connection, chosen, actor=request.user, choices=choices)
    except ValidationError as err:
        context.update(error=" ".join(err.messages), selected=connection.entity_id)
        return _entity_page(request, context, status=400)
    where = connection.entity_id or _("the top level")
    messages.success(
        request,
        _("%(company)s now works with %(entity)s by default.")
        % {"company": connection.company_name or connection.company_id, "entity": where},
        fail_silently=True,
    )
    return HttpResponseSeeOther(adapter.get_connections_url(request))


def _entity_page(
    request: HttpRequest, context: dict[str, Any], *, status: int = 200
) -> HttpResponse:
    return render(request, "intacct_connect/entity.html", context, status=status)


def _safe_code(code: str) -> str:
    return code if _SAFE_CODE.fullmatch(code) else ""


def _token_error_page(request: HttpRequest, err: IntacctConnectError) -> HttpResponse:
    code = err.error_id or err.code or ""
    if flows.is_sender_id_problem(err.code, err.message) or flows.is_sender_id_problem(
        err.error_id
    ):
        return error_page(request, "sender_id", status=403, code=code)
    logger.warning("Intacct token endpoint failed: %s", type(err).__name__)
    return error_page(request, "token_endpoint", status=502, code=code)


CALLBACK_PARAMS = ("state", "code", "error", "error_description")


def _scrub_query(request: HttpRequest) -> None:
    """Forget the query string once read: an error report or a log line about this request
    must not carry the authorization code or the state."""
    request.GET = QueryDict("")
    request.META["QUERY_STRING"] = ""


@require_GET
@never_cache
@transaction.non_atomic_requests
@sensitive_variables("params", "result")
def callback(request: HttpRequest) -> HttpResponse:
    """Intacct redirects here with ``code`` and ``state`` (or ``error``)."""
    adapter, tenant_key = _tenant(request)
    params = {key: request.GET.get(key, "") for key in CALLBACK_PARAMS}
    _scrub_query(request)
    try:
        result = flows.complete_callback(
            params,
            session_key=request.session.session_key,
            user=getattr(request, "user", None),
            tenant_key=tenant_key,
        )
    except OAuthStateError as err:
        logger.warning("Refused an Intacct OAuth callback: %s", err.code)
        return error_page(request, "state", status=400, code=err.code or "")
    except AuthorizationDenied as err:
        if flows.is_sender_id_problem(err.code, err.message):
            return error_page(request, "sender_id", status=403, code=err.code or "")
        return error_page(request, "denied", status=403, code=err.code or "")
    except TokenRequestError as err:
        return _token_error_page(request, err)
    except IntacctConfigurationError:
        logger.exception("intacct_connect is misconfigured")
        return error_page(request, "configuration", status=500)
    except IntacctConnectError as err:
        return _token_error_page(request, err)
    # After the commit (this view is not atomic); best effort, never fails the connect.
    flows.fill_company_name(result.connection)
    company = result.connection.company_name or result.connection.company_id
    if result.created:
        text = _("Connected %(company)s.") % {"company": company}
    else:
        text = _("Reconnected %(company)s.") % {"company": company}
    messages.success(request, text, fail_silently=True)
    target = result.next_url or adapter.get_connect_redirect_url(request, result.connection)
    return _no_store(HttpResponseSeeOther(target))
