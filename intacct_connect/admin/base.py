"""Shared admin building blocks.

* :class:`ActionAdmin` refuses, with an error message and no effect, a POSTed action the
  user may not run (each action declares its permission with
  ``@admin.action(permissions=[...])``), and offers ``object_actions`` as buttons on the
  change page, posting to ``<object_id>/actions/<name>/`` (permission checked there too).
* :func:`confirm_action` is the confirmation page of destructive or mass actions: it returns
  a page listing the objects until the user re-posts the action with ``post=yes``.
* :class:`ReadOnlyModelAdmin` is for history: list and read, never add, change or delete.
* :class:`TenantLabelChangeList` labels the tenant keys of a page of results in one
  adapter call (``obj.tenant_label``), see :func:`tenant_labels`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.utils import quote, unquote
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied
from django.db.models import Model, QuerySet
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
)
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _

CONFIRMATION_TEMPLATE = "intacct_connect/admin/action_confirmation.html"


def confirm_action(
    model_admin: admin.ModelAdmin,  # type: ignore[type-arg]
    request: HttpRequest,
    queryset: QuerySet[Any],
    *,
    action: str,
    title: str,
    consequences: Sequence[str],
    describe: Callable[[Any], str] = str,
    confirm_label: str | None = None,
) -> TemplateResponse | None:
    """The confirmation page of ``action`` for ``queryset``, or None once confirmed.

    Call it first in an action; when it returns a response, return that response. The page
    lists the objects (linked to their change pages), says what will happen
    (``consequences``) and re-posts the action with ``post=yes`` and the selected keys.
    """
    if request.method == "POST" and request.POST.get("post") == "yes":
        return None
    opts = model_admin.model._meta
    objects = list(queryset)
    can_view = model_admin.has_view_or_change_permission(request)
    items: list[SafeString] = []
    for obj in objects:
        label = describe(obj)
        if can_view:
            url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[quote(obj.pk)])
            items.append(format_html('<a href="{}">{}</a>', url, label))
        else:
            items.append(format_html("{}", label))
    context = {
        **model_admin.admin_site.each_context(request),
        "title": title,
        "subtitle": None,
        "opts": opts,
        "action": action,
        "action_checkbox_name": ACTION_CHECKBOX_NAME,
        "objects": objects,
        "items": items,
        "consequences": list(consequences),
        "confirm_label": confirm_label or _("Yes, I\u2019m sure"),
        "cancel_url": request.get_full_path(),
        "has_view_permission": can_view,
        "original": None,
    }
    request.current_app = model_admin.admin_site.name
    return TemplateResponse(request, CONFIRMATION_TEMPLATE, context)


def action_parts(action: Any) -> tuple[Callable[..., Any], str]:
    """(function, description) of an entry of ``ModelAdmin.get_actions()``: a
    ``(func, name, description)`` tuple up to Django 6.0, an ``Action`` object from 6.1
    (whose tuple indexing is deprecated)."""
    func = getattr(action, "func", None)
    if func is not None:
        return func, str(action.description)
    func, _name, description = action
    return func, str(description)


def posted_action_name(request: HttpRequest) -> str:
    """The action a changelist POST asks for (as Django's ``response_action`` reads it)."""
    names = request.POST.getlist("action")
    try:
        index = int(request.POST.get("index", 0))
    except ValueError:
        index = 0
    try:
        return names[index]
    except IndexError:
        return ""


class ActionAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Actions that declare their permission, refused with a message when it is missing,
    and ``object_actions`` offered as change-page buttons (see the module docstring)."""

    #: action names offered as buttons on the change page (each still needs its permission)
    object_actions: tuple[str, ...] = ()

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        # Django alone ignores (or answers "No action selected" to) an action the user may
        # not run; say so plainly, and never reach the action.
        if request.method == "POST" and "action" in request.POST and "_save" not in request.POST:
            name = posted_action_name(request)
            if name and name not in self.get_actions(request) and self.get_action(name):
                self.message_user(
                    request,
                    _(
                        "You do not have permission to run the action “%(action)s”; "
                        "nothing was done."
                    )
                    % {"action": name},
                    messages.ERROR,
                )
                return HttpResponseRedirect(request.get_full_path())
        return super().changelist_view(request, extra_context)

    def get_urls(self) -> list[URLPattern]:
        opts = self.model._meta
        extra = [
            path(
                "<path:object_id>/actions/<str:name>/",
                self.admin_site.admin_view(self.object_action_view),
                name=f"{opts.app_label}_{opts.model_name}_object_action",
            )
        ]
        return extra + super().get_urls()

    def allowed_object_actions(self, request: HttpRequest) -> list[tuple[str, str]]:
        """(name, description) of the ``object_actions`` this user may run."""
        allowed = self.get_actions(request)
        return [
            (name, action_parts(action)[1])
            for name in self.object_actions
            if (action := allowed.get(name)) is not None
        ]

    def object_action_view(self, request: HttpRequest, object_id: str, name: str) -> HttpResponse:
        """Run one of ``object_actions`` on one object; back to its change page."""
        if name not in self.object_actions or self.get_action(name) is None:
            raise Http404
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        action = self.get_actions(request).get(name)
        if action is None:
            raise PermissionDenied
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            raise Http404
        opts = self.model._meta
        change_url = reverse(
            f"admin:{opts.app_label}_{opts.model_name}_change",
            args=[quote(obj.pk)],
            current_app=self.admin_site.name,
        )
        func = action_parts(action)[0]
        response = func(self, request, self.get_queryset(request).filter(pk=obj.pk))
        if isinstance(response, TemplateResponse) and response.context_data is not None:
            # a confirmation page: "take me back" returns to the change page
            response.context_data["cancel_url"] = change_url
            response.context_data["original"] = obj
        if isinstance(response, HttpResponse):
            return response
        return HttpResponseRedirect(change_url)

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Model | None = None,
    ) -> HttpResponse:
        if obj is not None and obj.pk is not None:
            opts = self.model._meta
            context["object_action_buttons"] = [
                (
                    reverse(
                        f"admin:{opts.app_label}_{opts.model_name}_object_action",
                        args=[quote(obj.pk), name],
                        current_app=self.admin_site.name,
                    ),
                    name,
                    description,
                )
                for name, description in self.allowed_object_actions(request)
            ]
        return super().render_change_form(request, context, add, change, form_url, obj)


class ReadOnlyModelAdmin(ActionAdmin):
    """A record operators may list and read but never add, edit or delete (history, logs,
    runs); retention pruning deletes old rows, and deleting a connection deletes its own."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def tenant_labels(keys: Iterable[str]) -> dict[str, str]:
    """Labels of tenant keys from the site's adapter (one call); unknown keys label
    themselves."""
    from intacct_connect.adapter import get_adapter

    wanted = {key for key in keys if key}
    if not wanted:
        return {}
    labels = get_adapter().get_tenant_labels(wanted)
    return {key: labels.get(key) or key for key in wanted}


class TenantLabelChangeList(ChangeList):
    """Sets ``tenant_label`` on each result with a ``tenant_key``, in one adapter call per
    page (so the list's query count does not grow with the page)."""

    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        results = list(self.result_list)
        self.result_list = results
        labels = tenant_labels(getattr(obj, "tenant_key", "") for obj in results)
        for obj in results:
            key = getattr(obj, "tenant_key", "")
            obj.tenant_label = labels.get(key, key)


def tenant_label_html(key: str, label: str | None) -> SafeString:
    """The tenant's label, with its key as the tooltip."""
    if not key:
        return format_html("{}", "—")
    return format_html('<span title="{}">{}</span>', key, label or key)


def company_label(connection: Any) -> str:
    """``COMPANY`` or ``COMPANY|ENTITY``: a connection named without its current status."""
    if connection is None:
        return "—"
    entity = f"|{connection.entity_id}" if connection.entity_id else ""
    return f"{connection.company_id}{entity}"
