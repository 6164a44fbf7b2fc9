#!/usr/bin/env bash
# A real single-node SLURM on 127.0.0.1 for testing the workflow's SLURM profile (profiles/slurm).
#
#   tests/slurm/cluster.sh up      install missing packages, write the configuration, start the daemons
#   tests/slurm/cluster.sh status  which daemons run, the node's state
#   tests/slurm/cluster.sh down    stop the daemons this script started (by recorded PID), nothing else
#   tests/slurm/cluster.sh purge   down, then delete the state directory
#   tests/slurm/cluster.sh env     print `export SLURM_CONF=...` for the clients (sinfo, sbatch, sacct)
#
# Everything lives under a state directory ($LMC_SLURM_DIR, default /tmp/lmc-slurm): configuration, munge key,
# MariaDB data, spool and state directories, logs, and one PID file per daemon started. Daemons: munged ->
# mariadbd -> slurmdbd (accounting, so that `sacct` works) -> slurmctld -> slurmd. The node has one fake GPU
# (gres gpu:fake:1 on /dev/null) so that GPU-requesting jobs can be scheduled. `up` is idempotent: with every
# daemon running it returns at once; otherwise it starts only the missing ones. Processes are tracked in the
# cgroup v1 hierarchy when a smoke job works that way, else by /proc (proctrack/linuxproc, task/none);
# LMC_SLURM_PROCTRACK=linuxproc skips the cgroup attempt on a fresh state directory.
set -euo pipefail

STATE=${LMC_SLURM_DIR:-/tmp/lmc-slurm}
CLUSTER=lmc
ACCOUNT=lmc
PARTITION=main
DB_PORT=${LMC_SLURM_DB_PORT:-3306}
CTLD_PORT=${LMC_SLURM_CTLD_PORT:-6817}
SLURMD_PORT=${LMC_SLURM_D_PORT:-6818}
DBD_PORT=${LMC_SLURM_DBD_PORT:-6819}
PACKAGES=(slurm-wlm munge slurmdbd mariadb-server)
DAEMONS=(munged mariadbd slurmdbd slurmctld slurmd) # start order; stopped in reverse

ETC=$STATE/etc
RUN=$STATE/run
LOG=$STATE/log
PIDS=$STATE/pids
CONF=$ETC/slurm.conf
MUNGE_SOCKET=$RUN/munge/munge.socket
DB_SOCKET=$RUN/mysqld/mysqld.sock
export SLURM_CONF=$CONF

say() { printf 'cluster.sh: %s\n' "$*"; }
die() {
    printf 'cluster.sh: error: %s\n' "$*" >&2
    exit 1
}

# --- processes ---------------------------------------------------------------------------------------------

pid_of() { # recorded PID of a daemon, empty when none
    local file=$PIDS/$1.pid
    [[ -s $file ]] && cat "$file" || true
}

alive() { # the daemon's recorded PID is running and is that daemon (not a zombie, not a reused PID)
    local name=$1 pid
    pid=$(pid_of "$name")
    [[ -n $pid && -r /proc/$pid/stat ]] || return 1
    [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$name" ]] || return 1
    [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) != Z ]]
}

start() { # name, command...: start a foreground daemon in its own session, record its PID
    local name=$1
    shift
    # Without job control the background child is not a process-group leader, so setsid execs in place and
    # $! is the daemon's own PID.
    setsid "$@" </dev/null >>"$LOG/$name.out" 2>&1 &
    echo $! >"$PIDS/$name.pid"
}

wait_for() { # seconds, description, command...: poll until the command succeeds
    local seconds=$1 what=$2 deadline
    shift 2
    deadline=$((SECONDS + seconds))
    until "$@" >/dev/null 2>&1; do
        if ((SECONDS >= deadline)); then
            say "timed out after ${seconds}s waiting for $what"
            return 1
        fi
        sleep 0.2
    done
}

await_daemon() { # name, seconds, description, check...: wait for a daemon just started; fails early if it exits
    local name=$1 seconds=$2 what=$3 deadline
    shift 3
    deadline=$((SECONDS + seconds))
    until "$@" >/dev/null 2>&1; do
        if ! alive "$name"; then
            say "$name exited while waiting for $what"
            break
        elif ((SECONDS >= deadline)); then
            say "timed out after ${seconds}s waiting for $what"
            break
        fi
        sleep 0.2
    done
    if ! alive "$name" || ! "$@" >/dev/null 2>&1; then
        say "--- last lines of $LOG/$name.log and $LOG/$name.out:"
        tail -n 25 "$LOG/$name.log" "$LOG/$name.out" >&2 2>/dev/null || true
        return 1
    fi
}

started_or_die() { await_daemon "$@" || die "$1 did not come up"; }

port_free() { # nothing listens on 127.0.0.1:PORT
    ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

need_port() { # name, port: refuse to start when a process we did not start holds the port
    port_free "$2" || die "port $2 (for $1) is taken by another process; set LMC_SLURM_*_PORT or stop it"
}

gone() { # the process has exited (a zombie waiting for init to reap it counts as gone)
    [[ ! -d /proc/$1 || $(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) == Z ]]
}

stop() { # name: SIGTERM the recorded PID, wait, SIGKILL if it lingers
    local name=$1 pid
    if ! alive "$name"; then
        rm -f "$PIDS/$name.pid"
        return 0
    fi
    pid=$(pid_of "$name")
    kill -TERM "$pid" 2>/dev/null || true
    if ! wait_for 30 "$name ($pid) to exit" gone "$pid"; then
        kill -KILL "$pid" 2>/dev/null || true
        sleep 0.5
    fi
    say "stopped $name ($pid)"
    rm -f "$PIDS/$name.pid"
}

# --- preconditions -----------------------------------------------------------------------------------------

require_root() {
    [[ $(id -u) -eq 0 ]] || die "must run as root (it installs packages and starts system daemons)"
}

install_packages() {
    local missing=() pkg
    for pkg in "${PACKAGES[@]}"; do
        [[ $(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null) == "install ok installed" ]] || missing+=("$pkg")
    done
    ((${#missing[@]})) || return 0
    command -v apt-get >/dev/null || die "apt-get is not available; cannot install ${missing[*]}"
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # The packages' init scripts are not run here (no init system): every daemon is started below.
    if ! apt-get install -y -q "${missing[@]}" >"$LOG/apt.log" 2>&1; then
        say "install failed; running apt-get update and retrying"
        apt-get update -q >>"$LOG/apt.log" 2>&1 || { tail -n 20 "$LOG/apt.log" >&2; die "apt-get update failed"; }
        apt-get install -y -q "${missing[@]}" >>"$LOG/apt.log" 2>&1 ||
            { tail -n 20 "$LOG/apt.log" >&2; die "apt-get install ${missing[*]} failed (see $LOG/apt.log)"; }
    fi
}

# --- configuration -----------------------------------------------------------------------------------------

layout() {
    mkdir -p "$STATE" "$ETC" "$RUN" "$LOG" "$PIDS" "$STATE/ctld" "$STATE/slurmd"
    chmod 755 "$STATE" "$RUN"
    install -d -m 755 -o munge -g munge "$RUN/munge"
    install -d -m 700 -o munge -g munge "$STATE/munge"
    install -d -m 755 -o mysql -g mysql "$RUN/mysqld"
    if [[ ! -s $STATE/munge/munge.key ]]; then
        dd if=/dev/urandom of="$STATE/munge/munge.key" bs=1024 count=1 status=none
        chown munge:munge "$STATE/munge/munge.key"
        chmod 400 "$STATE/munge/munge.key"
    fi
    [[ -s $STATE/db.password ]] || { head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$STATE/db.password"; }
    chmod 600 "$STATE/db.password"
    [[ -s $STATE/proctrack ]] || echo "${LMC_SLURM_PROCTRACK:-cgroup}" >"$STATE/proctrack"
}

write_slurm_conf() { # the node line comes from `slurmd -C` (real CPUs and memory of this machine)
    local node proctrack task
    node=$(slurmd -C | head -n 1)
    [[ $node == NodeName=* ]] || die "slurmd -C printed no node line: $node"
    if [[ $(cat "$STATE/proctrack") == cgroup ]]; then
        proctrack=proctrack/cgroup task=task/cgroup,task/affinity
    else
        proctrack=proctrack/linuxproc task=task/none
    fi
    cat >"$CONF.new" <<EOF
# Written by tests/slurm/cluster.sh; rewritten on every start.
ClusterName=$CLUSTER
SlurmctldHost=$(hostname -s)(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCKET
CredType=cred/munge
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/slurmd
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
MailProg=/bin/true
MpiDefault=none
ProctrackType=$proctrack
TaskPlugin=$task
ReturnToService=2
MinJobAge=300
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
GresTypes=gpu
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=$DBD_PORT
AccountingStoragePass=$MUNGE_SOCKET
AccountingStorageTRES=gres/gpu
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=30
JobCompType=jobcomp/none
$node Gres=gpu:fake:1 NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=$PARTITION Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
    mv "$CONF.new" "$CONF"
    # Without File= the node is INVALID; /dev/null stands in for the device. Jobs see CUDA_VISIBLE_DEVICES=0.
    echo "Name=gpu Type=fake File=/dev/null" >"$ETC/gres.conf"
    if [[ $proctrack == proctrack/cgroup ]]; then
        cat >"$ETC/cgroup.conf" <<EOF
CgroupPlugin=cgroup/v1
CgroupMountpoint=/sys/fs/cgroup
ConstrainCores=yes
ConstrainRAMSpace=yes
ConstrainDevices=no
EOF
    else
        rm -f "$ETC/cgroup.conf"
    fi
}

write_slurmdbd_conf() {
    cat >"$ETC/slurmdbd.conf" <<EOF
# Written by tests/slurm/cluster.sh
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCKET
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=$DBD_PORT
SlurmUser=root
PidFile=$RUN/slurmdbd.pid
LogFile=$LOG/slurmdbd.log
DebugLevel=info
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=$(cat "$STATE/db.password")
StorageLoc=slurm_acct_db
EOF
    chown root:root "$ETC/slurmdbd.conf"
    chmod 600 "$ETC/slurmdbd.conf"
}

link_system_conf() { # let clients in any shell find the cluster, unless a slurm.conf is there already
    if [[ -d /etc/slurm && ! -e /etc/slurm/slurm.conf && ! -L /etc/slurm/slurm.conf ]]; then
        ln -s "$CONF" /etc/slurm/slurm.conf
    fi
}

unlink_system_conf() {
    if [[ -L /etc/slurm/slurm.conf && $(readlink /etc/slurm/slurm.conf) == "$CONF" ]]; then
        rm -f /etc/slurm/slurm.conf
    fi
}

# --- daemons -----------------------------------------------------------------------------------------------

munge_works() { munge -n -S "$MUNGE_SOCKET" | unmunge -S "$MUNGE_SOCKET"; }

start_munged() {
    alive munged && return 0
    start munged setpriv --reuid=munge --regid=munge --init-groups \
        munged --foreground --force --num-threads=10 --socket="$MUNGE_SOCKET" --key-file="$STATE/munge/munge.key" \
        --pid-file="$RUN/munge/munged.pid" --seed-file="$STATE/munge/munged.seed" --log-file="$LOG/munged.log"
    started_or_die munged 20 "munge to encode and decode a credential" munge_works
}

db() { mariadb --no-defaults --socket="$DB_SOCKET" -u root "$@"; }

start_mariadbd() {
    alive mariadbd && return 0
    if [[ ! -d $STATE/mysql/mysql ]]; then
        rm -rf "$STATE/mysql"
        mariadb-install-db --no-defaults --user=mysql --datadir="$STATE/mysql" --skip-test-db \
            --auth-root-authentication-method=socket >"$LOG/mariadb-install-db.log" 2>&1 ||
            { tail -n 20 "$LOG/mariadb-install-db.log" >&2; die "mariadb-install-db failed"; }
    fi
    need_port mariadbd "$DB_PORT"
    start mariadbd mariadbd --no-defaults --user=mysql --datadir="$STATE/mysql" --socket="$DB_SOCKET" \
        --bind-address=127.0.0.1 --port="$DB_PORT" --pid-file="$RUN/mysqld/mysqld.pid" \
        --log-error="$LOG/mariadbd.log" --skip-name-resolve --innodb-buffer-pool-size=64M --innodb-lock-wait-timeout=900
    started_or_die mariadbd 60 "MariaDB to answer" mariadb-admin --no-defaults --socket="$DB_SOCKET" ping
    local password
    password=$(cat "$STATE/db.password")
    db <<EOF
CREATE DATABASE IF NOT EXISTS slurm_acct_db;
CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY '$password';
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$password';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
FLUSH PRIVILEGES;
EOF
}

start_slurmdbd() {
    alive slurmdbd && return 0
    need_port slurmdbd "$DBD_PORT"
    start slurmdbd slurmdbd -D
    started_or_die slurmdbd 60 "slurmdbd to answer sacctmgr" sacctmgr -n list cluster
}

associations() { # cluster, account and the current user in it; before slurmctld registers with slurmdbd
    local user
    user=$(id -un)
    sacctmgr -n -P list cluster format=cluster | grep -qx "$CLUSTER" ||
        sacctmgr -i add cluster "$CLUSTER" >/dev/null
    sacctmgr -n -P list account format=account | grep -qx "$ACCOUNT" ||
        sacctmgr -i add account "$ACCOUNT" cluster="$CLUSTER" description="lmc workflow tests" organization=lmc >/dev/null
    sacctmgr -n -P list association cluster="$CLUSTER" account="$ACCOUNT" user="$user" format=user | grep -qx "$user" ||
        sacctmgr -i add user "$user" account="$ACCOUNT" cluster="$CLUSTER" >/dev/null
    sacctmgr -n -P list user "$user" format=defaultaccount | grep -qx "$ACCOUNT" ||
        sacctmgr -i modify user "$user" set defaultaccount="$ACCOUNT" >/dev/null
}

ctld_up() { scontrol ping | grep -q UP; }

start_slurmctld() {
    alive slurmctld && return 0
    need_port slurmctld "$CTLD_PORT"
    start slurmctld slurmctld -D -f "$CONF"
    started_or_die slurmctld 60 "slurmctld to answer scontrol ping" ctld_up
}

node_state() { sinfo -h -N -o %t 2>/dev/null | head -n 1; }

node_idle() { [[ $(node_state) == idle ]]; }

node_serving() { [[ $(node_state) =~ ^(idle|mix|alloc|comp)$ ]]; } # up, whether or not jobs are running

registered() { sinfo -h -N -o %t | grep -qv -e '\*' -e unk; } # slurmctld has heard from slurmd

node_ready() { # resume a node left down or drained (e.g. by a killed slurmd), then wait until it serves
    case $(node_state) in
    down* | drain* | drng* | fail*)
        scontrol update nodename="$(sinfo -h -N -o %N | head -n 1)" state=resume || true
        ;;
    esac
    wait_for 60 "the node to be idle" node_serving || { sinfo -N -l >&2 || true; return 1; }
}

smoke() { timeout 60 srun -t 1 true >>"$LOG/smoke.log" 2>&1; }

node_works() { # start slurmd if needed, bring the node into service, run a smoke job when the node is idle
    if ! alive slurmd; then
        need_port slurmd "$SLURMD_PORT"
        start slurmd slurmd -D -f "$CONF"
        await_daemon slurmd 60 "slurmd to register" registered || return 1
    fi
    node_ready || return 1
    if ! node_idle; then
        say "the node is busy ($(node_state)); skipping the smoke job"
    elif ! smoke; then
        say "srun -t 1 true failed:"
        tail -n 5 "$LOG/smoke.log" >&2
        return 1
    fi
}

# --- commands ----------------------------------------------------------------------------------------------

all_alive() {
    local name
    for name in "${DAEMONS[@]}"; do alive "$name" || return 1; done
}

up() {
    require_root
    local t0=$EPOCHREALTIME
    if [[ -d $STATE ]] && all_alive && node_serving; then
        say "already up (state in $STATE); nothing to do"
        say "up in $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.2f", b - a}') s"
        return 0
    fi
    mkdir -p "$LOG"
    install_packages
    layout
    write_slurm_conf
    write_slurmdbd_conf
    link_system_conf
    start_munged
    start_mariadbd
    start_slurmdbd
    associations
    start_slurmctld
    if ! node_works; then
        [[ $(cat "$STATE/proctrack") == cgroup ]] || die "the node does not run jobs (logs in $LOG)"
        say "falling back from cgroup process tracking to proctrack/linuxproc + task/none"
        stop slurmd
        stop slurmctld
        echo linuxproc >"$STATE/proctrack"
        write_slurm_conf
        start_slurmctld
        node_works || die "the node does not run jobs (logs in $LOG)"
    fi
    sinfo
    say "up (state in $STATE, process tracking: $(cat "$STATE/proctrack")); clients need SLURM_CONF=$CONF"
    say "up in $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.2f", b - a}') s"
}

down() {
    require_root
    [[ -d $PIDS ]] || { say "nothing to stop (no $PIDS)"; return 0; }
    if alive slurmctld; then # jobs of this cluster only: their steps would outlive slurmd otherwise
        local jobs
        jobs=$(timeout 10 squeue -h -o %A 2>/dev/null || true)
        [[ -z $jobs ]] || timeout 10 scancel $jobs 2>/dev/null || true
    fi
    local i
    for ((i = ${#DAEMONS[@]} - 1; i >= 0; i--)); do stop "${DAEMONS[i]}"; done
    unlink_system_conf
    say "down"
}

status() {
    local name running=0
    for name in "${DAEMONS[@]}"; do
        if alive "$name"; then
            printf '%-10s running (pid %s)\n' "$name" "$(pid_of "$name")"
            running=$((running + 1))
        else
            printf '%-10s stopped\n' "$name"
        fi
    done
    if alive slurmctld; then
        sinfo -N -o '%N %t %c %m %G' || true
        echo "process tracking: $(cat "$STATE/proctrack" 2>/dev/null)"
    fi
    echo "state: $STATE  (export SLURM_CONF=$CONF)"
    ((running == ${#DAEMONS[@]}))
}

case ${1:-} in
up) up ;;
down) down ;;
status) status ;;
purge)
    down
    rm -rf "$STATE"
    say "removed $STATE"
    ;;
env) echo "export SLURM_CONF=$CONF" ;;
*)
    echo "usage: $0 up|down|status|purge|env" >&2
    exit 2
    ;;
esac
