#!/usr/bin/env bash
# Stop the single-node SLURM cluster of scripts/slurm_up.sh (or: make slurm-down).
#
# Cancels what is still queued, then stops exactly the daemons named by their pid files,
# in the reverse order of their start. SLURM_PURGE=1 also removes the cluster's state,
# logs and config files. The packages stay installed (a later slurm-up starts in seconds).
set -uo pipefail

RUN=/run/slurm
STATE=/var/lib/slurm

stop() {  # name, pid file
  local pid
  if [ -s "$2" ] && pid=$(cat "$2") && kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid"; echo "$1 killed (pid $pid)"; else echo "$1 stopped"; fi
  else
    echo "$1 was not running"
  fi
  rm -f "$2"
}

if command -v scontrol >/dev/null && scontrol ping 2>/dev/null | grep -q UP; then
  scancel --full --user=root 2>/dev/null || true
  for _ in $(seq 75); do [ -z "$(squeue -h 2>/dev/null)" ] && break; sleep 0.2; done
fi
stop slurmd "$RUN/slurmd.pid"
stop slurmctld "$RUN/slurmctld.pid"
stop slurmdbd "$RUN/slurmdbd.pid"
# MariaDB only where slurm_up.sh started it for the accounting
grep -q 'written by apollo-lab' /etc/slurm/slurmdbd.conf 2>/dev/null && stop mariadb /run/mysqld/mysqld.pid
stop munged /run/munge/munged.pid

if [ "${SLURM_PURGE:-0}" = 1 ]; then
  rm -rf "${STATE:?}/ctld" "${STATE:?}/d" /var/log/slurm/*.log
  rm -f /etc/slurm/slurm.conf /etc/slurm/slurmdbd.conf
  echo "state, logs and config removed"
fi
