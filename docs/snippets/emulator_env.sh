# The emulator's demo application (seeded in every fresh emulator) and a local broker.
export INTACCT_CLIENT_ID=demo-client.app.sage.com
export INTACCT_CLIENT_SECRET=demo-secret
export INTACCT_SENDER_ID=DEMO-SENDER
export INTACCT_REDIRECT_URI=http://localhost:8000/intacct/callback/
export INTACCT_TOKEN_KEYS="$(python -m intacct_connect.crypto)"
export INTACCT_EMULATOR_URL=http://127.0.0.1:8765
export CELERY_BROKER_URL=redis://localhost:6379/0
