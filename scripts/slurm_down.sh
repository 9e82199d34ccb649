#!/usr/bin/env bash
# Stop the single-node SLURM cluster of scripts/slurm_up.sh (or: make slurm-down).
#
# Cancels what is still queued, then stops exactly the daemons named by their pid files:
# the cluster's, then accounting and munge. SLURM_PURGE=1 also removes the cluster's state,
# logs and config files. The packages stay installed (a later slurm-up starts in seconds).
set -uo pipefail

RUN=/run/slurm
STATE=/var/lib/slurm

stop() {  # name:pidfile ... : TERM them all, then wait for each (KILL after 10 s)
  local item name pf pid waiting=()
  for item in "$@"; do
    name=${item%%:*}; pf=${item#*:}
    if [ -s "$pf" ] && pid=$(cat "$pf") && kill -0 "$pid" 2>/dev/null; then
      kill "$pid"; waiting+=("$name:$pid")
    else
      echo "$name was not running"
    fi
    rm -f "$pf"
  done
  for item in "${waiting[@]}"; do
    name=${item%%:*}; pid=${item#*:}
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid"; echo "$name killed (pid $pid)"; else echo "$name stopped"; fi
  done
}

if command -v scontrol >/dev/null && scontrol ping 2>/dev/null | grep -q UP; then
  scancel --full --user=root 2>/dev/null || true
  for _ in $(seq 75); do [ -z "$(squeue -h 2>/dev/null)" ] && break; sleep 0.2; done
fi
# the cluster first, then what it stands on
stop "slurmd:$RUN/slurmd.pid" "slurmctld:$RUN/slurmctld.pid"
mariadb=()  # MariaDB only where slurm_up.sh started it for the accounting
grep -q 'written by apollo-lab' /etc/slurm/slurmdbd.conf 2>/dev/null && mariadb=("mariadb:/run/mysqld/mysqld.pid")
stop "slurmdbd:$RUN/slurmdbd.pid" "${mariadb[@]}" "munged:/run/munge/munged.pid"

if [ "${SLURM_PURGE:-0}" = 1 ]; then
  rm -rf "${STATE:?}/ctld" "${STATE:?}/d" /var/log/slurm/*.log
  rm -f /etc/slurm/slurm.conf /etc/slurm/slurmdbd.conf
  echo "state, logs and config removed"
fi
