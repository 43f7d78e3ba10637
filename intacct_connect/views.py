from __future__ import annotations

from django.http import HttpRequest, HttpResponse


def connections(request: HttpRequest) -> HttpResponse:
    return HttpResponse("intacct_connect")
