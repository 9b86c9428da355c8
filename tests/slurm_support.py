"""A one-node SLURM cluster on loopback for the tests, with job accounting, started and stopped by them.

What runs: munged (a fresh key), MariaDB and slurmdbd (so `sacct` answers as on a real cluster),
slurmctld and slurmd, each from its Debian package, each bound to 127.0.0.1 on a free port, with
every file (keys, configs, state, spool, logs, the database) in one temporary directory. Two
things touch the machine: the packages, installed once when missing (as root, through apt), and
/etc/slurm/slurm.conf, a link to the temporary config while the cluster runs. A job's `srun`
needs the link: the Snakemake jobstep executor starts it without the SLURM_* environment, so
SLURM_CONF does not reach it and it looks where every site keeps its config.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

from mlflow_support import free_port

PACKAGES = ["slurmctld", "slurmd", "slurm-client", "slurmdbd", "munge", "mariadb-server"]
PROGRAMS = ["slurmctld", "slurmd", "slurmdbd", "sbatch", "sacct", "sacctmgr", "munged", "mungekey", "mariadbd",
            "mariadb-install-db", "mariadb"]
SYSTEM_CONF = Path("/etc/slurm/slurm.conf")
MARK = "dge-marl-test-cluster"  # in the temporary directory's name: a link there is ours to replace
SEARCH_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
ACCOUNT, PARTITION, CLUSTER = "dge", "main", "dgetest"
NODE_MINIMUM = {"cpus": 4, "mem_mb": 8192}
GPUS = 1


def missing_programs() -> list[str]:
    return [p for p in PROGRAMS if shutil.which(p, path=SEARCH_PATH) is None]


def unavailable() -> str | None:
    """Why this machine cannot host the test cluster, or None."""
    if os.geteuid() != 0:
        return "needs root: it installs SLURM from Debian and runs its daemons"
    if missing_programs() and shutil.which("apt-get") is None:
        return f"SLURM is not installed (missing {', '.join(missing_programs())}) and apt-get is unavailable"
    if SYSTEM_CONF.exists() and MARK not in os.path.realpath(SYSTEM_CONF):
        return f"{SYSTEM_CONF} already configures a SLURM cluster; the test starts its own and leaves that one alone"
    return None


def install() -> float:
    """Installs the Debian packages that are missing; returns the seconds it took (0 when none were)."""
    if not missing_programs():
        return 0.0
    began = time.monotonic()
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    command = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *PACKAGES]
    if subprocess.run(command, env=env, capture_output=True).returncode != 0:  # a fresh machine has no lists yet
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, check=True)
        subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    if missing_programs():
        raise RuntimeError(f"installed {PACKAGES} but still missing {missing_programs()}")
    return time.monotonic() - began


class Cluster:
    """The daemons and their files under `root`; `start()` returns once the node takes jobs."""

    def __init__(self, root: Path):
        self.root = root
        self.ports = {name: free_port() for name in ("ctld", "slurmd", "dbd", "mysql")}
        self.processes: dict[str, subprocess.Popen] = {}
        self.conf = root / "etc" / "slurm.conf"

    @property
    def env(self) -> dict:
        return {**os.environ, "SLURM_CONF": str(self.conf), "PATH": SEARCH_PATH}

    def run(self, *command: str, check: bool = True) -> str:
        result = subprocess.run(command, env=self.env, capture_output=True, text=True, timeout=60)
        if check and result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed: {result.stderr.strip()}")
        return result.stdout

    # ------------------------------------------------------------------ start and stop
    def start(self) -> "Cluster":
        for sub in ("etc", "munge", "log", "state", "spool", "db"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        (self.root / "munge").chmod(0o700)
        self._write_configs()
        if SYSTEM_CONF.is_symlink() or not SYSTEM_CONF.exists():
            SYSTEM_CONF.parent.mkdir(parents=True, exist_ok=True)
            SYSTEM_CONF.unlink(missing_ok=True)
            SYSTEM_CONF.symlink_to(self.conf)
        key = self.root / "munge" / "munge.key"
        self.run("mungekey", "--create", "--keyfile", str(key), "--bits", "1024")
        self._daemon("munged", "munged", "-F", "-f", f"--socket={self.root / 'munge.sock'}", f"--key-file={key}",
                     f"--log-file={self.root / 'log' / 'munged.log'}", f"--pid-file={self.root / 'munge' / 'pid'}",
                     f"--seed-file={self.root / 'munge' / 'seed'}")
        self._start_database()
        self._daemon("slurmdbd", "slurmdbd", "-D")
        self._until(self._dbd_up, "slurmdbd answers")
        for command in (("add", "cluster", CLUSTER), ("add", "account", ACCOUNT), ("add", "user", "root",
                                                                                     f"account={ACCOUNT}")):
            self.run("sacctmgr", "-i", *command)
        self._daemon("slurmctld", "slurmctld", "-D", "-i")
        self._daemon("slurmd", "slurmd", "-D", "-N", "localhost")
        self._until(lambda: "idle" in self.run("sinfo", "-h", "-o", "%T", check=False), "the node is idle")
        return self

    def stop(self) -> None:
        self.run("scontrol", "shutdown", check=False)
        for name in ("slurmd", "slurmctld", "slurmdbd", "mariadbd", "munged"):
            process = self.processes.pop(name, None)
            if process is None or process.poll() is not None:
                continue
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if SYSTEM_CONF.is_symlink() and os.readlink(SYSTEM_CONF) == str(self.conf):
            SYSTEM_CONF.unlink()

    def _daemon(self, name: str, *command: str) -> None:
        with (self.root / "log" / f"{name}.out").open("a") as log:
            self.processes[name] = subprocess.Popen(command, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                                    start_new_session=True)

    def _until(self, ready, what: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            dead = [name for name, p in self.processes.items() if p.poll() is not None]
            if dead or time.monotonic() > deadline:
                logs = "\n".join(f"== {p.name}\n{p.read_text()[-1500:]}" for p in sorted((self.root / "log").iterdir()))
                raise RuntimeError(f"waiting until {what}: {'exited: ' + ', '.join(dead) if dead else 'timed out'}\n"
                                   f"{logs}")
            time.sleep(0.5)

    def _dbd_up(self) -> bool:
        return subprocess.run(["sacctmgr", "-n", "list", "cluster"], env=self.env, capture_output=True,
                              timeout=30).returncode == 0

    def _start_database(self) -> None:
        data = self.root / "db"
        self.run("mariadb-install-db", "--user=root", f"--datadir={data}", "--auth-root-authentication-method=normal",
                 "--skip-test-db")
        socket = self.root / "mysql.sock"
        self._daemon("mariadbd", "mariadbd", "--user=root", f"--datadir={data}", f"--socket={socket}",
                     "--bind-address=127.0.0.1", f"--port={self.ports['mysql']}",
                     f"--pid-file={self.root / 'mysql.pid'}", f"--log-error={self.root / 'log' / 'mysql.err'}",
                     "--skip-log-bin", "--innodb-buffer-pool-size=32M")
        sql = ["mariadb", f"--socket={socket}", "-u", "root"]
        self._until(lambda: subprocess.run([*sql, "-e", "select 1"], capture_output=True).returncode == 0,
                    "MariaDB answers")
        grants = "; ".join(f"CREATE USER 'slurm'@'{host}' IDENTIFIED BY 'slurm'; "
                           f"GRANT ALL ON slurm_acct_db.* TO 'slurm'@'{host}'" for host in ("127.0.0.1", "localhost"))
        subprocess.run([*sql, "-e", grants], check=True, capture_output=True)

    def _write_configs(self) -> None:
        node = self.run("slurmd", "-C")
        # At least what one job of the GPU profile asks for (config_overrides lets slurmd advertise it), so
        # that SLURM accepts those requests too; the smoke profile's jobs need one CPU and 2 GB each.
        cpus = max(int(re.search(r"CPUs=(\d+)", node).group(1)), NODE_MINIMUM["cpus"])
        memory = max(int(re.search(r"RealMemory=(\d+)", node).group(1)) * 3 // 4, NODE_MINIMUM["mem_mb"])
        socket, root = self.root / "munge.sock", self.root
        self.conf.write_text(f"""\
ClusterName={CLUSTER}
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort={self.ports['ctld']}
SlurmdPort={self.ports['slurmd']}
CommunicationParameters=NoCtldInAddrAny,NoInAddrAny
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={socket}
SlurmUser=root
SlurmdUser=root
StateSaveLocation={root / 'state'}
SlurmdSpoolDir={root / 'spool'}
SlurmctldPidFile={root / 'slurmctld.pid'}
SlurmdPidFile={root / 'slurmd.pid'}
SlurmctldLogFile={root / 'log' / 'slurmctld.log'}
SlurmdLogFile={root / 'log' / 'slurmd.log'}
SlurmdParameters=config_overrides
GresTypes=gpu
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
ReturnToService=2
MinJobAge=300
KillWait=10
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort={self.ports['dbd']}
AccountingStoragePass={socket}
AccountingStoreFlags=job_comment
AccountingStorageTRES=gres/gpu
JobAcctGatherType=jobacct_gather/linux
NodeName=localhost NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory} Gres=gpu:{GPUS} State=UNKNOWN
PartitionName={PARTITION} Nodes=localhost Default=YES MaxTime=INFINITE State=UP
""")
        # Devices the node does not have: enough for the GPU profile's requests to be accepted and accounted.
        (self.conf.parent / "gres.conf").write_text(f"NodeName=localhost Name=gpu File=/dev/null Count={GPUS}\n")
        dbd = self.conf.parent / "slurmdbd.conf"
        dbd.write_text(f"""\
AuthType=auth/munge
AuthInfo=socket={socket}
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort={self.ports['dbd']}
CommunicationParameters=NoInAddrAny
SlurmUser=root
LogFile={root / 'log' / 'slurmdbd.log'}
PidFile={root / 'slurmdbd.pid'}
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort={self.ports['mysql']}
StorageUser=slurm
StoragePass=slurm
StorageLoc=slurm_acct_db
""")
        dbd.chmod(0o600)

    # ------------------------------------------------------------------ what ran
    def jobs(self) -> list[dict[str, str]]:
        """Every job the accounting database knows, one dict per job (allocation only, not its steps)."""
        fields = ["JobIDRaw", "JobName", "State", "Comment", "Account", "Partition", "AllocCPUS", "ReqMem", "Timelimit",
                  "ExitCode"]
        out = self.run("sacct", "-a", "-X", "-P", "-n", "-S", "2000-01-01", f"--format={','.join(fields)}")
        return [dict(zip(fields, line.split("|"))) for line in out.splitlines() if line]
