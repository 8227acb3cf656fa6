#!/usr/bin/env bash
# The test environment (only `just test` needs it, never `just run`):
# 1. .local/venv with the Python reference implementations the tests compare against (pinned
#    in tests/requirements.txt). Idempotent: reinstalls only when that file changed.
# 2. Debian's slurm-wlm and munge, for tests/slurm.rs (a real single-node Slurm cluster),
#    when they are missing and apt-get can install them (root, or sudo without a password).
#    Where they cannot be installed the Slurm test says so and is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

install_slurm() {
    if command -v slurmctld >/dev/null && command -v munged >/dev/null; then
        echo "test env: slurm-wlm and munge are installed"
        return
    fi
    local sudo=()
    if [ "$(id -u)" != 0 ]; then
        if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
            sudo=(sudo -n)
        else
            echo "test env: note: cannot install slurm-wlm/munge (not root, no sudo): the Slurm test will be skipped"
            return
        fi
    fi
    if ! command -v apt-get >/dev/null; then
        echo "test env: note: no apt-get: the Slurm test will be skipped"
        return
    fi
    echo "test env: installing slurm-wlm and munge from Debian"
    if ! { "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends slurm-wlm munge >/dev/null ||
        { "${sudo[@]}" apt-get update -q >/dev/null &&
            "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends slurm-wlm munge >/dev/null; }; }; then
        echo "test env: note: apt-get could not install slurm-wlm/munge: the Slurm test will be skipped"
    fi
}

install_venv() {
    local venv=.local/venv python=${POSTILLA_PYTHON:-python3} req=tests/requirements.txt
    local stamp="$venv/.requirements.sha256" want
    want=$(sha256sum "$req" | cut -d' ' -f1)
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
        echo "test env: $venv is up to date"
        return
    fi
    [ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
    echo "$want" > "$stamp"
    echo "test env: installed $(grep -c '==' "$req") pinned requirements into $venv"
}

install_venv
install_slurm
