#!/usr/bin/env bash
# A private single-node Slurm cluster for tests: munged, slurmctld and slurmd on localhost,
# all state, sockets and logs under DIR, ports chosen free at start. Needs Debian's
# slurm-wlm and munge packages (scripts/setup-test-env.sh installs them when it can) and root
# (slurmd runs jobs as the submitting user).
#
#   tests/support/slurm_cluster.sh start DIR   # prints SLURM_CONF=DIR/slurm.conf when up
#   tests/support/slurm_cluster.sh stop DIR
set -euo pipefail

cmd="${1:?start|stop}" dir="${2:?DIR}"
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"

stop() {
    for pid_file in "$dir/slurmd.pid" "$dir/slurmctld.pid" "$dir/munge/munged.pid"; do
        if [[ -s "$pid_file" ]]; then
            kill "$(cat "$pid_file")" 2>/dev/null || true
        fi
    done
    # slurmstepd children of a cancelled job may linger briefly
    sleep 0.5
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_for() { # seconds, description, command...
    local seconds="$1" what="$2"
    shift 2
    for ((i = 0; i < seconds * 10; i++)); do
        if "$@" >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.1
    done
    echo "slurm_cluster.sh: $what did not come up in ${seconds}s; logs in $dir/log" >&2
    tail -n 20 "$dir"/log/*.log >&2 || true
    return 1
}

start() {
    for bin in munged slurmctld slurmd sbatch sinfo; do
        command -v "$bin" >/dev/null || { echo "slurm_cluster.sh: $bin not found (apt-get install slurm-wlm munge)" >&2; exit 3; }
    done
    mkdir -p "$dir"/{state,spool,munge,log}
    chmod 700 "$dir/munge"
    chmod 755 "$dir"
    if [[ ! -s "$dir/munge/munge.key" ]]; then
        head -c 1024 /dev/urandom >"$dir/munge/munge.key"
        chmod 400 "$dir/munge/munge.key"
    fi
    munged --force --key-file="$dir/munge/munge.key" --socket="$dir/munge/munge.socket" \
        --pid-file="$dir/munge/munged.pid" --log-file="$dir/log/munged.log" --seed-file="$dir/munge/seed"
    wait_for 10 munged test -S "$dir/munge/munge.socket"

    local host ctld_port d_port
    host="$(hostname -s)"
    ctld_port="$(free_port)"
    d_port="$(free_port)"
    cat >"$dir/slurm.conf" <<CONF
ClusterName=postilla-test
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.socket
CredType=cred/munge
SlurmctldPort=$ctld_port
SlurmdPort=$d_port
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
NodeName=$host NodeAddr=127.0.0.1 CPUs=$(nproc) State=UNKNOWN
PartitionName=test Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
    export SLURM_CONF="$dir/slurm.conf"
    slurmctld -f "$SLURM_CONF"
    slurmd -f "$SLURM_CONF"
    wait_for 30 "the node" bash -c "sinfo -h -o %t | grep -qx idle"
    echo "SLURM_CONF=$SLURM_CONF"
}

case "$cmd" in
start) start ;;
stop) stop ;;
*) echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
esac
