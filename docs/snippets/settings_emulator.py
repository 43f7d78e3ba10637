# --- intacct_connect: local development against the emulator only ----------------------
# Remove this block for production; the URLs then default to Intacct's.
emulator = os.environ.get("INTACCT_EMULATOR_URL", "http://127.0.0.1:8765")
INTACCT_CONNECT.update(
    {
        "API_BASE_URL": f"{emulator}/ia/api/v1",
        "AUTHORIZE_URL": f"{emulator}/ia/api/v1/oauth2/authorize",
        "TOKEN_URL": f"{emulator}/ia/api/v1/oauth2/token",
        "REVOKE_URL": f"{emulator}/ia/api/v1/oauth2/revoke",
    }
)
