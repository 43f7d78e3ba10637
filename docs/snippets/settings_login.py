# --- intacct_connect: sign-in for the tenant pages (/intacct/) --------------------------
LOGIN_URL = "login"  # django.contrib.auth.urls' login view, mounted at /accounts/login/
LOGIN_REDIRECT_URL = "intacct_connect:connections"
TEMPLATES[0]["DIRS"] += [BASE_DIR / "templates"]  # holds templates/registration/login.html
