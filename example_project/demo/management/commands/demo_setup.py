"""Prepare the demo database: demo users (idempotent). Refuses to run with DEBUG off."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Create the demo users admin/admin (superuser) and alice/alice (a tenant user)."

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
