"""hardware/install.sh for real: as root, without --root, in a Debian bookworm chroot, twice.

test_deploy.py runs the installer into a scratch root and as a dry run; neither
installs a package, makes a user, chowns a file, builds the venv or enables a
unit. Here a minimal Debian bookworm (debootstrap --variant=minbase) stands in
for the Pi: Raspberry Pi OS Bookworm is Debian bookworm built for arm64 or
armhf; the chroot is amd64, this machine's own architecture. The installer runs
inside it as it would on a Pi (`sudo hardware/install.sh`). It needs root,
debootstrap, and the network to the Debian mirror and PyPI; CI has all three.

One module fixture builds the chroot and runs the installer twice; the tests
only read what it left. About a minute on 2 cores.

A second fixture does it once more for the Pi's own architecture: an arm64
bookworm chroot that runs under qemu-user-static through binfmt_misc (Python
about 6x slower there), where the installer runs, then ``kiosk demo --press``
and a small smoke subset of these tests. It reports the Python packages pip
had to build from source on aarch64 (no wheel for it on PyPI) as a
``SCENARIO {json}`` line (``pytest -s`` shows it).
"""

import json
import os
import platform
import re
import select
import shutil
import signal
import stat
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path

import pytest
from support import need

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
INSTALL_SH = REPO / "hardware" / "install.sh"
MIRROR = "http://deb.debian.org/debian"
SUITE = "bookworm"
# Raspberry Pi OS has systemd and udev; minbase has neither, and the installer
# enables units and installs udev rules.
BASE_PACKAGES = "systemd,udev"
# Downloaded .debs kept between runs (debootstrap only fetches what changed).
DEB_CACHE = Path("/var/cache/antrean-test/debootstrap")
SRC_IN_CHROOT = "/usr/src/antrean"
UNITS = ("antrean-kiosk.service", "antrean-agent.service")
# What is copied into the chroot: the source, not the developer's build and venv (as .gitignore).
NOT_SOURCE = shutil.ignore_patterns(".git", ".venv", "__pycache__", "*.egg-info", ".pytest_cache", ".hypothesis",
                                    ".mypy_cache", "demo-data", "build")


def script_list(name: str) -> list[str]:
    """A bash array of install.sh, e.g. APT_PACKAGES: the test follows the script's own lists."""
    match = re.search(rf"^{name}=\(([^)]*)\)$", INSTALL_SH.read_text(), re.MULTILINE)
    assert match, f"{name}=(...) not found in install.sh"
    return match.group(1).split()


# ---- mounts and processes: nothing may outlive the test ----

def mounts_under(root: Path) -> list[str]:
    """Mount points at or below root, deepest first."""
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), line.split()[4])  # \040 is a space
        if point == str(root) or point.startswith(f"{root}/"):
            points.append(point)
    return sorted(points, key=len, reverse=True)


def unmount_all(root: Path) -> None:
    """Unmount ours and any debootstrap left after a failure; lazily if busy."""
    for point in mounts_under(root):
        if subprocess.run(["umount", point], capture_output=True).returncode != 0:
            subprocess.run(["umount", "--lazy", point], capture_output=True)
    left = mounts_under(root)
    if left:
        raise RuntimeError(f"still mounted, so {root} is NOT deleted: {left}")


def processes_in(root: Path) -> list[int]:
    """Processes whose root directory is the chroot (a daemon a package's script started)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                proc_root = os.readlink(entry / "root")
            except OSError:  # gone, or a kernel thread
                continue
            if proc_root == str(root) or proc_root.startswith(f"{root}/"):
                pids.append(int(entry.name))
    return pids


def kill_and_wait(pid: int) -> None:
    """SIGKILL one process and wait for its exit through a pidfd (it is not our child)."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        signal.pidfd_send_signal(fd, signal.SIGKILL)
        select.select([fd], [], [], 10)  # readable once the process has exited
    except ProcessLookupError:
        pass
    finally:
        os.close(fd)


def remove_tree(root: Path) -> None:
    """Delete the chroot, never through a mount: refuse while anything is still mounted below it."""
    unmount_all(root)
    subprocess.run(["rm", "-rf", "--one-file-system", str(root)], check=True)


# ---- the chroot ----

@dataclass
class Chroot:
    root: Path

    def env(self) -> list[str]:
        """The clean environment sudo would give, plus the host's proxy settings, if any."""
        env = ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "LANG=C.UTF-8", "TERM=dumb"]
        for name in ("http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"):
            if name in os.environ:
                env.append(f"{name}={os.environ[name]}")
        return env

    def run(self, *cmd: str, input: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(["chroot", str(self.root), "/usr/bin/env", "-i", *self.env(), *cmd],
                              input=input, capture_output=True, text=True, timeout=timeout)

    def out(self, *cmd: str) -> str:
        result = self.run(*cmd)
        assert result.returncode == 0, f"{cmd}: {result.stdout}{result.stderr}"
        return result.stdout.strip()

    def path(self, inside: str) -> Path:
        return self.root / inside.lstrip("/")


def debootstrap(root: Path, arch: str | None = None) -> None:
    # One cache per architecture: .ci/test runs the two chroots' tests at the same time.
    cache = DEB_CACHE.with_name(f"{DEB_CACHE.name}-{arch}") if arch else DEB_CACHE
    cache.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(["debootstrap", *([f"--arch={arch}"] if arch else []), "--variant=minbase",
                             f"--include={BASE_PACKAGES}", f"--cache-dir={cache}", SUITE, str(root), MIRROR],
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]


def prepare(chroot: Chroot) -> None:
    """What a Pi has that a fresh minbase lacks, and what keeps the host safe."""
    # Package scripts must not start daemons (mosquitto) in the chroot: the
    # standard chroot switch, see invoke-rc.d(8). systemctl enable still works.
    policy = chroot.path("/usr/sbin/policy-rc.d")
    policy.write_text("#!/bin/sh\nexit 101\n")
    policy.chmod(0o755)
    # The chroot trusts what the host trusts: networks that inspect TLS give
    # their machines a local CA, and pip must reach PyPI through it. The
    # installer's apt run puts it into the chroot's bundle (ca-certificates).
    local_cas = chroot.path("/usr/local/share/ca-certificates")
    local_cas.mkdir(parents=True, exist_ok=True)
    for cert in Path("/usr/local/share/ca-certificates").glob("*.crt"):
        shutil.copy2(cert, local_cas / cert.name)
    # A clean copy of the project, where a checkout on a Pi would be.
    shutil.copytree(REPO, chroot.path(SRC_IN_CHROOT), ignore=NOT_SOURCE, symlinks=True)
    # Only /proc: the chroot has its own /dev nodes (debootstrap made them).
    # Not /sys: udevadm trigger in the chroot would send events to the HOST's devices.
    subprocess.run(["mount", "-t", "proc", "proc", str(chroot.path("/proc"))], check=True)


def snapshot(root: Path) -> dict:
    """Every entry of the chroot but /proc: type and mode, owner, mtime, and content hash or link target."""
    entries = {}
    for dirpath, dirnames, filenames in os.walk(root):
        if Path(dirpath) == root:
            dirnames.remove("proc")
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            if stat.S_ISREG(st.st_mode):
                with open(path, "rb") as f:
                    content = sha256(f.read()).hexdigest()
            elif stat.S_ISLNK(st.st_mode):
                content = os.readlink(path)
            else:
                content = ""
            entries[os.path.relpath(path, root)] = (st.st_mode, st.st_uid, st.st_gid, st.st_mtime_ns, content)
    return entries


def run_installer(chroot: Chroot, timeout: float = 900) -> subprocess.CompletedProcess:
    """As `sudo hardware/install.sh` on a Pi: root, a clean environment, no --root."""
    result = chroot.run("bash", f"{SRC_IN_CHROOT}/hardware/install.sh", timeout=timeout)
    left = processes_in(chroot.root)
    for pid in left:
        kill_and_wait(pid)
    assert not left, f"the installer left processes running in the chroot: {left}"
    return result


@dataclass
class Installed:
    chroot: Chroot
    first: subprocess.CompletedProcess
    second: subprocess.CompletedProcess
    before: dict  # snapshots around the second run
    after: dict


def mirror_reachable() -> bool:
    try:
        with urllib.request.urlopen(urllib.request.Request(f"{MIRROR}/dists/{SUITE}/InRelease", method="HEAD"),
                                    timeout=15):
            return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    need(os.geteuid() == 0, "the real install needs root (chroot, mount, useradd)")
    need(shutil.which("debootstrap") is not None, "debootstrap is not installed")
    need(mirror_reachable(), f"the Debian mirror {MIRROR} is not reachable")
    root = tmp_path_factory.mktemp("bookworm").resolve()
    root.chmod(0o755)  # it becomes /: mktemp's 0700 would lock the antrean user out of everything
    chroot = Chroot(root)
    try:
        debootstrap(root)
        prepare(chroot)
        first = run_installer(chroot)
        assert first.returncode == 0, f"first run failed:\n{first.stdout}\n{first.stderr}"
        before = snapshot(root)
        second = run_installer(chroot)
        after = snapshot(root)
        yield Installed(chroot, first, second, before, after)
    finally:
        for pid in processes_in(root):  # after a failure in the middle of a run
            kill_and_wait(pid)
        remove_tree(root)


def stat_of(chroot: Chroot, path: str) -> str:
    """owner:group mode, with the chroot's own user names."""
    return chroot.out("stat", "-c", "%U:%G %a", path)


# ---- what the first run did ----

def test_packages_installed_and_pi_only_ones_reported(installed):
    chroot = installed.chroot
    for pkg in script_list("APT_PACKAGES"):
        status = chroot.run("dpkg-query", "-W", "-f=${Status}", pkg).stdout
        assert status == "install ok installed", f"{pkg}: {status!r}"
    pi_only = script_list("PI_PACKAGES")
    assert "python3-lgpio" in pi_only
    for pkg in pi_only:
        # Debian has no candidate for these; the installer must say it skipped them, not fail.
        policy = chroot.out("apt-cache", "policy", pkg)
        assert "Candidate" not in policy or "Candidate: (none)" in policy, policy
        assert f"! {pkg} is not in this system's apt sources" in installed.first.stdout


def test_system_user_with_nologin_and_existing_groups(installed):
    chroot = installed.chroot
    name, _, uid, gid, _, home, shell = chroot.out("getent", "passwd", "antrean").split(":")
    assert int(uid) < 1000, "not a system user"
    assert (home, shell) == ("/var/lib/antrean", "/usr/sbin/nologin")
    assert chroot.out("getent", "group", gid).split(":")[0] == "antrean"
    wanted = script_list("KIOSK_GROUPS")
    present = {g for g in wanted if chroot.run("getent", "group", g).returncode == 0}
    assert "gpio" not in present  # made by Raspberry Pi OS, absent from Debian ...
    assert "! group gpio does not exist here; skipped" in installed.first.stdout  # ... and said so
    assert set(chroot.out("id", "-nG", "antrean").split()) == present | {"antrean"}


def test_owners_and_modes(installed):
    expected = {
        "/etc/antrean": "root:antrean 750",
        "/var/lib/antrean": "antrean:antrean 750",
        "/opt/antrean": "root:root 755",
        "/opt/antrean/venv/bin/kiosk": "root:root 755",
        "/opt/antrean/bin/antrean-lobby-screen": "root:root 755",
        "/etc/antrean/kiosk.toml": "root:antrean 640",
        "/etc/antrean/mqtt.secret": "antrean:antrean 600",
        "/etc/udev/rules.d/60-antrean.rules": "root:root 644",
        **{f"/etc/systemd/system/{unit}": "root:root 644" for unit in UNITS},
    }
    actual = {path: stat_of(installed.chroot, path) for path in expected}
    assert actual == expected


def test_files_are_the_projects(installed):
    chroot = installed.chroot
    pairs = {"hardware/udev/60-antrean.rules": "/etc/udev/rules.d/60-antrean.rules",
             **{f"hardware/systemd/{unit}": f"/etc/systemd/system/{unit}" for unit in UNITS}}
    for src, dest in pairs.items():
        assert chroot.path(dest).read_bytes() == (REPO / src).read_bytes(), dest


def test_units_enabled(installed):
    chroot = installed.chroot
    for unit in UNITS:
        # Offline: systemctl reads the unit files, systemd is not running here.
        assert chroot.run("systemctl", "is-enabled", unit).stdout.strip() == "enabled", unit
        link = chroot.path(f"/etc/systemd/system/multi-user.target.wants/{unit}")
        assert os.readlink(link) == f"/etc/systemd/system/{unit}"
    assert "! systemd is not running here" in installed.first.stdout
    assert "! udev is not running here" in installed.first.stdout


def test_secrets_made_here_not_shipped(installed):
    chroot = installed.chroot
    secret = chroot.path("/etc/antrean/mqtt.secret").read_text().strip()
    assert len(secret) >= 32
    config = chroot.path("/etc/antrean/kiosk.toml").read_text()
    hashes = re.findall(r'^staff_password_hash = "([^"]*)"$', config, re.MULTILINE)
    assert len(hashes) == 1 and hashes[0].startswith(("scrypt:", "pbkdf2:")), hashes
    assert re.search(r'^staff_password_hash = ""$', (REPO / "hardware/kiosk.example.toml").read_text(), re.MULTILINE)
    shipped = [p for p in chroot.path(SRC_IN_CHROOT).rglob("*")
               if p.is_file() and (secret.encode() in p.read_bytes() or hashes[0].encode() in p.read_bytes())]
    assert shipped == []


def test_staff_password_matches_its_hash(installed):
    chroot = installed.chroot
    password = installed.first.stdout.split("STAFF PASSWORD (shown only now; write it down): ")[1].split()[0]
    check = ("import sys, tomllib\n"
             "from werkzeug.security import check_password_hash\n"
             "hash = tomllib.load(open('/etc/antrean/kiosk.toml', 'rb'))['lobby']['staff_password_hash']\n"
             "sys.exit(0 if check_password_hash(hash, sys.stdin.readline().strip()) else 1)\n")
    for attempt, expected in ((password, 0), (password + "x", 1)):
        result = chroot.run("runuser", "-u", "antrean", "--", "/opt/antrean/venv/bin/python", "-c", check,
                            input=attempt + "\n")
        assert result.returncode == expected, result.stderr


def test_venv_runs_as_the_service_user(installed):
    chroot = installed.chroot
    result = chroot.run("runuser", "-u", "antrean", "--",
                        "/opt/antrean/venv/bin/kiosk", "check-config", "/etc/antrean/kiosk.toml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK" in result.stdout
    # The agent's and the lobby's entry points load too (without touching the network).
    for command in ("edge-agent", "antrean-lobby"):
        result = chroot.run("runuser", "-u", "antrean", "--", f"/opt/antrean/venv/bin/{command}", "--help")
        assert result.returncode == 0, command + result.stderr


# ---- the second run ----

def test_second_run_changes_nothing(installed):
    second = installed.second
    assert second.returncode == 0, second.stdout + second.stderr
    assert [line for line in second.stdout.splitlines() if line.startswith("+")] == []
    assert "STAFF PASSWORD" not in second.stdout
    changed = {path: (installed.before.get(path), installed.after.get(path))
               for path in installed.before.keys() | installed.after.keys()
               if installed.before.get(path) != installed.after.get(path)}
    assert changed == {}  # secrets, config, venv, units, users: same bytes, owners, modes, times
    for secret in ("etc/antrean/mqtt.secret", "etc/antrean/kiosk.toml"):  # said outright: not overwritten
        assert installed.after[secret] == installed.before[secret], secret


# ---- the Pi's architecture: arm64 under qemu-user-static ----

ARM64_BINFMT = Path("/proc/sys/fs/binfmt_misc/qemu-aarch64")
# What a smoke run on aarch64 covers: SQLite under the ledger, Pillow, qrcode and
# python-escpos under the ticket layout, and the config checks with `kiosk check-config`.
SMOKE_TESTS = ("tests/test_ledger.py", "tests/test_layout.py", "tests/test_config.py")
SMOKE_TOOLS = ("pytest", "hypothesis")
PIP_LOG = "/opt/antrean/venv/pip-install.log"  # install.sh keeps pip's full log there


def aarch64_runs() -> bool:
    """binfmt_misc hands aarch64 programs to qemu-user-static (.ci/system-packages sets this up)."""
    try:
        return ARM64_BINFMT.read_text().splitlines()[0] == "enabled"
    except OSError:
        return False


def prepare_foreign(chroot: Chroot) -> None:
    """prepare(), plus what pip and a pty need in a foreign chroot (docs: ENVIRONMENT, arm64)."""
    prepare(chroot)
    # pip reads the host's pip configuration (its CA bundle) before the installer's
    # apt run has built the chroot's own bundle.
    for name in ("/etc/ssl/certs/ca-certificates.crt", "/etc/pip.conf"):
        if Path(name).is_file():
            chroot.path(name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(name, chroot.path(name))
    # The demo's printer is a pseudo-terminal: it needs /dev/pts.
    for point in ("/dev", "/dev/pts"):
        subprocess.run(["mount", "--bind", point, str(chroot.path(point))], check=True)


def built_from_source(pip_log: str) -> list[str]:
    """Packages pip built a wheel for (no wheel for this machine on PyPI), the project itself aside."""
    names = set(re.findall(r"Building wheel for (\S+)", pip_log)) - {"antrean"}
    return sorted(names)


@dataclass
class Arm64:
    chroot: Chroot
    install: subprocess.CompletedProcess
    demo: subprocess.CompletedProcess
    smoke: subprocess.CompletedProcess
    seconds: dict


@pytest.fixture(scope="module")
def arm64(tmp_path_factory):
    need(os.geteuid() == 0, "the arm64 install needs root (chroot, mount, useradd)")
    need(shutil.which("debootstrap") is not None, "debootstrap is not installed")
    need(aarch64_runs(), f"{ARM64_BINFMT} is not enabled: binfmt_misc with qemu-user-static and binfmt-support")
    need(mirror_reachable(), f"the Debian mirror {MIRROR} is not reachable")
    root = tmp_path_factory.mktemp("bookworm-arm64").resolve()
    root.chmod(0o755)
    chroot = Chroot(root)
    seconds = {}
    started = time.monotonic()
    try:
        debootstrap(root, arch="arm64")
        prepare_foreign(chroot)
        seconds["debootstrap"] = round(time.monotonic() - started)
        install = run_installer(chroot, timeout=1500)
        assert install.returncode == 0, f"install failed on arm64:\n{install.stdout}\n{install.stderr}"
        seconds["install"] = round(time.monotonic() - started - seconds["debootstrap"])
        mark = time.monotonic()
        demo = chroot.run("/opt/antrean/venv/bin/kiosk", "demo", "--press", "abc", "--data-dir", "/tmp/demo",
                          timeout=600)
        seconds["demo"] = round(time.monotonic() - mark)
        mark = time.monotonic()
        tools = chroot.run("/opt/antrean/venv/bin/pip", "install", "--quiet", *SMOKE_TOOLS, timeout=600)
        assert tools.returncode == 0, tools.stdout + tools.stderr
        smoke = chroot.run("sh", "-c", f"cd {SRC_IN_CHROOT} && exec /opt/antrean/venv/bin/python -m pytest -q "
                           f"-p no:cacheprovider {' '.join(SMOKE_TESTS)}", timeout=1200)
        seconds["smoke"] = round(time.monotonic() - mark)
        seconds["total"] = round(time.monotonic() - started)
        yield Arm64(chroot, install, demo, smoke, seconds)
    finally:
        for pid in processes_in(root):
            kill_and_wait(pid)
        remove_tree(root)


def test_arm64_install_demo_and_smoke(arm64):
    chroot = arm64.chroot
    assert chroot.out("uname", "-m") == "aarch64"  # really the Pi's architecture, through qemu
    assert chroot.out("/opt/antrean/venv/bin/python", "-c", "import platform; print(platform.machine())") \
        == "aarch64"
    pip_log = chroot.path(PIP_LOG).read_text()
    assert "Building wheel for antrean" in pip_log  # the project always is: the log does show builds
    built = built_from_source(pip_log)
    print("SCENARIO " + json.dumps({"scenario": "install-arm64", "host": platform.machine(),
                                    "built_from_source": built, "seconds": arm64.seconds}, sort_keys=True))
    if built:  # the installer tells the technician, who needs python3-dev (and time) for these
        assert f"! built from source here (no wheel for this machine): {' '.join(built)}" in arm64.install.stdout
    assert arm64.demo.returncode == 0, arm64.demo.stdout + arm64.demo.stderr
    for number in (1, 2, 3):
        assert chroot.path(f"/tmp/demo/tickets/doc-{number:04d}.png").stat().st_size > 0
    labels = re.findall(r"\|\s+([ABC])   -   0   0   1\s+\|", arm64.demo.stdout)
    assert labels == ["A", "B", "C"], arm64.demo.stdout[-3000:]
    assert arm64.smoke.returncode == 0, arm64.smoke.stdout[-6000:] + arm64.smoke.stderr[-3000:]
    assert " passed" in arm64.smoke.stdout and "skipped" not in arm64.smoke.stdout, arm64.smoke.stdout[-2000:]
