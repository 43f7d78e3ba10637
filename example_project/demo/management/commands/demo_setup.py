"""Prepare the demo database (idempotent): demo users and two site-wide job schedules.

Refuses to run with DEBUG off: it creates users with well-known passwords.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from intacct_connect.models import Schedule, ScheduleScope

DEMO_SCHEDULES: list[dict[str, Any]] = [
    {
        "name": "Demo: health check every 5 minutes",
        "job": "health_check",
        "params": {},
        "interval_seconds": 300,
    },
    {
        "name": "Demo: copy vendors every 2 minutes",
        "job": "query_to_storage",
        "params": {
            "object": "accounts-payable/vendor",
            "fields": ["key", "id", "name", "status", "audit.modifiedDateTime"],
            "watermark_field": "audit.modifiedDateTime",
        },
        "interval_seconds": 120,
    },
]


class Command(BaseCommand):
    help = (
        "Create the demo users admin/admin (superuser) and alice/alice (a tenant user), and "
        "site-wide schedules for the built-in health_check and query_to_storage jobs."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG:
            raise CommandError(
                "demo_setup creates well-known passwords; it runs only with DEBUG on."
            )
        User = get_user_model()
        for username, superuser in (("admin", True), ("alice", False)):
            if User.objects.filter(username=username).exists():
                continue
            if superuser:
                User.objects.create_superuser(username, f"{username}@example.com", username)
            else:
                User.objects.create_user(username, f"{username}@example.com", username)
            self.stdout.write(f"created demo user {username} / {username}")
        for spec in DEMO_SCHEDULES:
            _, created = Schedule.objects.get_or_create(
                name=spec["name"],
                defaults={**spec, "scope": ScheduleScope.SITE, "next_run_at": timezone.now()},
            )
            if created:
                self.stdout.write(f"created schedule {spec['name']!r}")
