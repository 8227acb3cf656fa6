#!/usr/bin/env bash
# Creates .local/venv with the Python reference implementations the tests compare against
# (pinned in tests/requirements.txt). Only `just test` needs it, never `just run`. Idempotent:
# reinstalls only when tests/requirements.txt changed.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.local/venv
PYTHON=${POSTILLA_PYTHON:-python3}
REQ=tests/requirements.txt
stamp="$VENV/.requirements.sha256"
want=$(sha256sum "$REQ" | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    echo "test env: $VENV is up to date"
    exit 0
fi
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQ"
echo "$want" > "$stamp"
echo "test env: installed $(wc -l < "$REQ") pinned requirements into $VENV"
