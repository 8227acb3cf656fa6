#!/usr/bin/env bash
# The test environment (only `just test` needs it, never `just run`):
# 1. .local/venv with the Python reference implementations the tests compare against (pinned
#    in tests/requirements.txt). Idempotent: reinstalls only when that file changed.
# 2. Debian's slurm-wlm and munge, for tests/slurm.rs (a real single-node Slurm cluster), and
#    Debian's chromium, for tests/report_browser.rs (the HTML report in a headless browser),
#    when they are missing and apt-get can install them (root, or sudo without a password).
#    Where they cannot be installed the test says so and is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

# apt_install WHAT CHECK PACKAGES...: installs Debian PACKAGES unless the command CHECK exists,
# where apt-get can (root, or sudo without a password); otherwise says which test is skipped.
apt_install() {
    local what=$1 check=$2
    shift 2
    if command -v "$check" >/dev/null; then
        echo "test env: $* installed"
        return
    fi
    local sudo=()
    if [ "$(id -u)" != 0 ]; then
        if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
            sudo=(sudo -n)
        else
            echo "test env: note: cannot install $* (not root, no sudo): $what will be skipped"
            return
        fi
    fi
    if ! command -v apt-get >/dev/null; then
        echo "test env: note: no apt-get: $what will be skipped"
        return
    fi
    echo "test env: installing $* from Debian"
    if ! { "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >/dev/null ||
        { "${sudo[@]}" apt-get update -q >/dev/null &&
            "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >/dev/null; }; }; then
        echo "test env: note: apt-get could not install $*: $what will be skipped"
    fi
}

install_slurm() {
    command -v munged >/dev/null || apt_install "the Slurm test" munged munge
    apt_install "the Slurm test" slurmctld slurm-wlm
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
# headless Chromium for tests/report_browser.rs (the HTML report checked in a real browser)
apt_install "the report browser test" chromium chromium
