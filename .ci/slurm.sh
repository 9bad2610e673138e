#!/usr/bin/env bash
# A one-node Slurm for the Slurm executor's tests: install, configure, start, check.
# Idempotent: what is installed, written or running already is left as it is.
set -euo pipefail

conf=/etc/slurm/slurm.conf
host=$(hostname)

if ! command -v sbatch >/dev/null || ! command -v slurmctld >/dev/null \
  || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null; then
  echo "ci: installing slurm-wlm and munge"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge
fi

# munge: one key, its daemon running as the munge user.
if [ ! -s /etc/munge/munge.key ]; then
  echo "ci: creating the munge key"
  mungekey -c -f -k /etc/munge/munge.key
  chown munge:munge /etc/munge/munge.key
  chmod 0400 /etc/munge/munge.key
fi
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  echo "ci: starting munged"
  install -d -o munge -g munge -m 0755 /run/munge
  install -d -o munge -g munge -m 0700 /var/log/munge /var/lib/munge
  su -s /bin/sh munge -c /usr/sbin/munged
  for _ in $(seq 20); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.5; done
fi
munge -n | unmunge >/dev/null || { echo "ci: munged does not answer" >&2; exit 1; }

# slurm.conf: one node (this host, all its cores), one partition `work`.
if [ ! -s "$conf" ] || ! grep -q "^NodeName=$host " "$conf"; then
  echo "ci: writing $conf"
  mkdir -p /etc/slurm
  mem=$(free -m | awk '/^Mem:/ {print int($2 * 0.8)}')
  cat >"$conf" <<CONF
# Written by .ci/slurm.sh: a one-node Slurm for Mirror's tests.
ClusterName=mirror
SlurmctldHost=$host
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
SlurmUser=root
ReturnToService=2
SchedulerType=sched/backfill
NodeName=$host CPUs=$(nproc) RealMemory=$mem State=UNKNOWN
PartitionName=work Nodes=$host Default=YES MaxTime=INFINITE State=UP
SchedulerParameters=defer,sched_min_interval=0,batch_sched_delay=0,default_queue_depth=1000,bf_interval=1
MessageTimeout=30
MinJobAge=5
SlurmctldDebug=error
SlurmdDebug=error
CONF
fi
mkdir -p /var/spool/slurmctld /var/spool/slurmd /var/log/slurm

if ! pgrep -x slurmctld >/dev/null; then
  echo "ci: starting slurmctld"
  slurmctld
fi
if ! pgrep -x slurmd >/dev/null; then
  echo "ci: starting slurmd"
  slurmd
fi

# The node must come up idle (or already busy with work) within a minute.
state=""
for _ in $(seq 60); do
  state=$(sinfo -h -n "$host" -o %T 2>/dev/null | head -n1 || true)
  case "$state" in
    idle | mixed | allocated) break ;;
    down* | drain* | unknown*) scontrol update nodename="$host" state=resume >/dev/null 2>&1 || true ;;
  esac
  sleep 1
done
case "$state" in
  idle | mixed | allocated) echo "ci: slurm node $host is $state" ;;
  *)
    echo "ci: slurm node $host is '${state:-not listed}' after 60 s; see /var/log/slurm/" >&2
    exit 1
    ;;
esac
