"""What deleting objects in the admin deletes, for a model whose related rows have
read-only admins (a connection's token, events, runs, calls, schedules, stored records…).

:func:`cascade_summary` is a ``ModelAdmin.get_deleted_objects()``: each object with the
counts of the rows its deletion cascades to, counted per relation (one query each) and
never loaded. Delete permission on the object is enough: the cascaded rows need no
permission of their own, since their admins never delete.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import model_ngettext, quote
from django.db import models
from django.db.models import Count
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.text import capfirst


def cascade_summary(
    model_admin: admin.ModelAdmin,  # type: ignore[type-arg]
    objs: Any,
    request: HttpRequest,
) -> tuple[list[Any], dict[str, int], set[str], list[Any]]:
    """``(deleted, model_count, perms_needed, protected)`` for deleting ``objs``, as
    ``ModelAdmin.get_deleted_objects()`` returns them (``perms_needed`` is always empty)."""
    opts = model_admin.model._meta
    objects = list(objs)
    pks = [c.pk for c in objects]
    per_object: dict[Any, list[str]] = {pk: [] for pk in pks}
    model_count: dict[str, int] = {}
    protected: list[Any] = []
    if objects:
        model_count[str(opts.verbose_name_plural)] = len(objects)
    for rel in opts.get_fields(include_hidden=True):
        if not (rel.auto_created and not rel.concrete and (rel.one_to_many or rel.one_to_one)):
            continue
        on_delete = rel.on_delete
        if on_delete not in (models.CASCADE, models.PROTECT, models.RESTRICT):
            continue  # SET_NULL and friends: the rows stay
        related: Any = rel.related_model
        fk = rel.field.name
        rows = (
            related._base_manager.filter(**{f"{fk}__in": pks})
            .order_by()
            .values_list(fk)
            .annotate(n=Count("pk"))
        )
        total = 0
        for pk, n in rows:
            label = f"{n} {model_ngettext(related._meta, n)}"
            if on_delete is models.CASCADE:
                per_object[pk].append(label)
            else:
                protected.append(label)
            total += n
        if total and on_delete is models.CASCADE:
            model_count[str(related._meta.verbose_name_plural)] = total
    deleted: list[Any] = []
    can_view = model_admin.has_view_or_change_permission(request)
    for obj in objects:
        if can_view:
            url = reverse(
                f"admin:{opts.app_label}_{opts.model_name}_change",
                args=[quote(obj.pk)],
                current_app=model_admin.admin_site.name,
            )
            deleted.append(
                format_html('{}: <a href="{}">{}</a>', capfirst(opts.verbose_name), url, obj)
            )
        else:
            deleted.append(format_html("{}: {}", capfirst(opts.verbose_name), obj))
        if per_object[obj.pk]:
            deleted.append(per_object[obj.pk])
    return deleted, model_count, set(), protected
