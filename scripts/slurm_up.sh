#!/usr/bin/env bash
# Start a single-node SLURM cluster on this machine (for the tests and for trying the launchers).
#
#   sudo scripts/slurm_up.sh        (or: make slurm-up)
#
# Debian's packages (slurmctld, slurmd, slurm-client: what slurm-wlm pulls in; munge;
# slurmdbd with MariaDB for accounting), five daemons started directly (no systemd), no
# cgroups. Accounting is not optional: without it `sacct` fails, submitit sees every job
# as UNKNOWN and waits forever on one that was cancelled. Idempotent: a second call
# rewrites the config and starts only what is not running. Exit 3: this machine cannot
# (not root, no apt-get, not Linux); the tests skip on it, outside CI.
#
# Knobs: SLURM_PARTITION (debug), SLURM_CPUS (all), SLURM_MEM_MB (80% of RAM),
#        SLURM_WIPE=1 (forget old jobs; job ids start again at 1).
set -euo pipefail

PARTITION=${SLURM_PARTITION:-debug}
CPUS=${SLURM_CPUS:-$(nproc)}
MEM_MB=${SLURM_MEM_MB:-$(awk '/MemTotal/ {print int($2 / 1024 * 0.8)}' /proc/meminfo)}
ETC=/etc/slurm
STATE=/var/lib/slurm
LOGS=/var/log/slurm
RUN=/run/slurm
HOST=$(hostname -s)
START=$(date +%s.%N)

say() { printf '[slurm-up %5ss] %s\n' "$(awk -v a="$(date +%s.%N)" -v b="$START" 'BEGIN {printf "%.1f", a - b}')" "$*"; }
cannot() { echo "slurm-up: cannot start a cluster here: $*" >&2; exit 3; }
running() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
wait_for() {  # seconds, then a command that succeeds once the thing is up
  local tries=$(( $1 * 5 )); shift
  for _ in $(seq "$tries"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  "$@"
}

[ "$(uname -s)" = Linux ] || cannot "not Linux"
[ "$(id -u)" = 0 ] || cannot "not root"
command -v apt-get >/dev/null || cannot "no apt-get"

# -- packages, the first time only (then `apt-get update` first: a clean machine has no lists)
PACKAGES="slurmctld slurmd slurm-client munge slurmdbd mariadb-server"
missing=$(for p in $PACKAGES; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || echo "$p"; done)
if [ -n "$missing" ]; then
  echo "installing:" $missing
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # shellcheck disable=SC2086
  apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
say "packages: $(slurmctld -V)"

# -- the node's name must resolve, and slurmd -C gives its real layout of sockets and cores
getent hosts "$HOST" >/dev/null || echo "127.0.0.1 $HOST" >>/etc/hosts
LAYOUT=""
[ "$CPUS" = "$(nproc)" ] && LAYOUT=$(slurmd -C | head -1 | tr ' ' '\n' \
  | grep -E '^(Boards|SocketsPerBoard|CoresPerSocket|ThreadsPerCore)=' | tr '\n' ' ')
mkdir -p "$ETC" "$STATE/ctld" "$STATE/d" "$LOGS" "$RUN"

# -- config; a change of it needs the daemons restarted (scontrol reconfigure is not enough)
before=$({ cat "$ETC/slurm.conf" 2>/dev/null || true; } | md5sum)
cat >"$ETC/slurm.conf" <<EOF
# written by apollo-lab scripts/slurm_up.sh
ClusterName=apollo
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
MailProg=/bin/true
# no cgroups: linuxproc tracks a job's processes, affinity pins its CPUs
ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
ReturnToService=2
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldLogFile=$LOGS/slurmctld.log
SlurmdLogFile=$LOGS/slurmd.log
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=$(( MEM_MB / CPUS / 2 ))
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=$HOST
JobAcctGatherType=jobacct_gather/linux
JobCompType=jobcomp/none
# one test node: react in seconds, keep finished jobs visible for 5 minutes
SlurmdTimeout=60
InactiveLimit=0
MinJobAge=300
KillWait=5
Waittime=0
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS ${LAYOUT}RealMemory=$MEM_MB State=UNKNOWN
PartitionName=$PARTITION Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
cat >"$ETC/slurmdbd.conf" <<EOF
# written by apollo-lab scripts/slurm_up.sh
AuthType=auth/munge
DbdHost=$HOST
DbdAddr=127.0.0.1
SlurmUser=root
LogFile=$LOGS/slurmdbd.log
PidFile=$RUN/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=slurm
StorageLoc=slurm_acct_db
EOF
chmod 600 "$ETC/slurmdbd.conf"
changed=0; [ "$before" = "$(md5sum <"$ETC/slurm.conf")" ] || changed=1
say "config: $ETC/slurm.conf (partition $PARTITION, $CPUS CPUs, ${MEM_MB} MB)"

# -- munge: the package scripts cannot start services here; run munged as its own user
mkdir -p /run/munge /var/lib/munge /var/log/munge
chown munge:munge /run/munge /var/lib/munge /var/log/munge
[ -s /etc/munge/munge.key ] || mungekey --create --force
chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
running /run/munge/munged.pid || runuser -u munge -- /usr/sbin/munged --force
wait_for 10 sh -c 'munge -n | unmunge'
say "munged up"

# -- MariaDB (bound to localhost) and slurmdbd: the accounting that sacct reads
if ! mysqladmin ping >/dev/null 2>&1; then
  mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
  [ -d /var/lib/mysql/mysql ] || mariadb-install-db --user=mysql >/dev/null
  setsid nohup /usr/sbin/mariadbd --user=mysql --bind-address=127.0.0.1 \
    --pid-file=/run/mysqld/mysqld.pid >"$LOGS/mariadb.log" 2>&1 </dev/null &
  wait_for 30 mysqladmin ping
fi
mysql -u root <<'SQL'
CREATE DATABASE IF NOT EXISTS slurm_acct_db;
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'slurm';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
SQL
running "$RUN/slurmdbd.pid" || /usr/sbin/slurmdbd
wait_for 30 bash -c 'echo >/dev/tcp/127.0.0.1/6819'
say "mariadb and slurmdbd up"

# -- controller, then the node
stop() { local pid; pid=$(cat "$1" 2>/dev/null) || return 0; kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done; kill -9 "$pid" 2>/dev/null || true; }
if [ "$changed" = 1 ]; then stop "$RUN/slurmd.pid"; stop "$RUN/slurmctld.pid"; fi
if [ "${SLURM_WIPE:-0}" = 1 ] && ! running "$RUN/slurmctld.pid"; then rm -rf "${STATE:?}/ctld/"*; fi
running "$RUN/slurmctld.pid" || /usr/sbin/slurmctld
wait_for 30 sh -c 'scontrol ping | grep -q UP' || { tail -20 "$LOGS/slurmctld.log" >&2; exit 1; }
sacctmgr -i add cluster apollo >/dev/null 2>&1 || true
sacctmgr -i add account apollo Cluster=apollo >/dev/null 2>&1 || true
sacctmgr -i add user root Account=apollo >/dev/null 2>&1 || true
say "slurmctld up"
running "$RUN/slurmd.pid" || /usr/sbin/slurmd
node_ready() { sinfo -h -n "$HOST" -o %T | grep -qE '^(idle|mixed|allocated)'; }
if ! wait_for 30 node_ready; then
  scontrol update NodeName="$HOST" State=RESUME || true
  wait_for 10 node_ready || { sinfo -N -l >&2; tail -20 "$LOGS/slurmd.log" >&2; exit 1; }
fi
say "slurmd up: node $HOST $(sinfo -h -n "$HOST" -o %T), partition $PARTITION"
