"""Process start to ready-to-issue, and resident memory, of ``python -m kiosk run``.

Each run starts the real kiosk process (keyboard buttons on a stdin pipe,
the "file" printer backend writing into the temp dir) and times Popen to its
sd_notify ``READY=1`` (sent right after the JSON log line ``"msg": "ready"``). The first run is cold in the
kiosk's sense: a new data dir, so no ledger, no ticket key and no
python-escpos capabilities cache yet (it is written to data_dir/cache). The
OS page cache is warm either way: a first boot of a Pi is slower still.

After ready a few presses go in through stdin; once their tickets are in the
printer file, VmRSS and VmHWM are read from /proc/<pid>/status. Then stdin is
closed and the kiosk must exit 0.

    python benchmarks/startup.py            # 1 cold + 10 warm runs
    python benchmarks/startup.py --quick    # 1 cold + 3 warm runs
"""

import datetime as dt
import os
import shutil
import subprocess
import sys
import tempfile
import time

from _common import arguments, config_text, machine, ms, percentile, say, table, verdict
from issuing import fill_history
from support.kiosk_process import clean_env, start_kiosk

from kiosk import config as kconfig
from kiosk.printer.decode import decode

TARGET_READY_S = 0.5
TARGET_RSS_KB = 40_000_000 / 1024  # 40 MB; /proc reports kB of 1024 bytes
PRESSES = "abcdabcd"  # eight tickets, two per service
TIMEOUT_S = 30


def proc_status(pid: int) -> dict:
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "Threads"):
                fields[key] = int(value.split()[0])  # kB, or a count for Threads
    return fields


def printed(path: str, offset: int = 0) -> int:
    """Cut receipts in the printer file after ``offset``: fully decoded, so only for the final check."""
    return sum(1 for receipt in decode(read_from(path, offset), strict=False) if receipt.cut)


def cuts(path: str, offset: int) -> int:
    """Cheap count of cut commands (GS V) after ``offset``, for polling while the kiosk prints.

    Text and QR payloads never hold the byte GS (layout.clean_text turns control characters into
    '?'), so every GS V is a cut.
    """
    return read_from(path, offset).count(b"\x1dV")


def read_from(path: str, offset: int) -> bytes:
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read()
    except FileNotFoundError:
        return b""


def file_size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except FileNotFoundError:
        return 0


def one_run(config_path: str, printer_path: str) -> dict:
    offset = file_size(printer_path)
    kiosk = start_kiosk(config_path, ready=False)
    try:
        if not kiosk.settle(TIMEOUT_S):
            raise SystemExit(f"kiosk not ready, status {kiosk.proc.poll()}:\n{kiosk.log(tail=None)}")
        ready_s = kiosk.ready_after_s

        t_press = time.perf_counter()
        kiosk.press(PRESSES)
        first_s = None
        deadline = t_press + TIMEOUT_S
        while (count := cuts(printer_path, offset)) < len(PRESSES):
            if first_s is None and count >= 1:
                first_s = time.perf_counter() - t_press
            if time.perf_counter() > deadline or not kiosk.alive:
                raise SystemExit(f"only {count} of {len(PRESSES)} tickets printed:\n{kiosk.log(tail=None)}")
            time.sleep(0.001)
        all_s = time.perf_counter() - t_press
        first_s = first_s if first_s is not None else all_s
        mem = proc_status(kiosk.pid)
        if printed(printer_path, offset) != len(PRESSES):
            raise SystemExit(f"the printer file does not decode to {len(PRESSES)} tickets")

        kiosk.close_input()  # EOF: the kiosk drains, stops and exits
        status = kiosk.end(TIMEOUT_S)
        if status != 0:
            raise SystemExit(f"kiosk exited {status}:\n{kiosk.log(tail=None)}")
    finally:
        if kiosk.alive:
            kiosk.kill()
    return {"ready": ready_s, "first_ticket": first_s, "all_tickets": all_s, **mem}


def bare_python() -> dict:
    """RSS of an interpreter that does nothing: the floor under any Python kiosk."""
    out = subprocess.run([sys.executable, "-c", "print(open('/proc/self/status').read())"],
                         capture_output=True, text=True, check=True, env=clean_env()).stdout
    fields = {}
    for line in out.splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0])
    starts = []
    for _ in range(5):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True, env=clean_env())
        starts.append(time.perf_counter() - t0)
    fields["start_s"] = percentile(starts, 50)
    return fields


def mb(kb: float) -> str:
    return f"{kb * 1024 / 1e6:.1f} MB"


def main(argv=None) -> int:
    parser = arguments(__doc__, "a fast smoke run (1 cold + 3 warm runs)")
    parser.add_argument("--runs", type=int, help="warm runs (default 10)")
    parser.add_argument("--history", type=int, help="tickets in the big-ledger runs (default 1,000,000)")
    args = parser.parse_args(argv)
    runs = args.runs or (3 if args.quick else 10)
    history = args.history or (50_000 if args.quick else 1_000_000)
    hist_runs = 1 if args.quick else 3

    with tempfile.TemporaryDirectory(prefix="antrean-bench-startup-") as tmp:
        data_dir = os.path.join(tmp, "data")
        config_path = os.path.join(tmp, "kiosk.toml")
        with open(config_path, "w") as f:
            f.write(config_text(data_dir))
        printer_path = os.path.join(data_dir, "printer.out")
        say("cold run (new data dir, no escpos cache) ...")
        cold = one_run(config_path, printer_path)
        cache = os.path.join(data_dir, "cache")
        cache_files = sorted(os.listdir(cache)) if os.path.isdir(cache) else []
        warm = []
        for i in range(runs):
            say(f"warm run {i + 1}/{runs} ...")
            warm.append(one_run(config_path, printer_path))
        total_printed = printed(printer_path)

        # The same kiosk five years on: a ledger with ~a million tickets (cache and key carried over).
        hist_data = os.path.join(tmp, "data-history")
        hist_config = os.path.join(tmp, "kiosk-history.toml")
        with open(hist_config, "w") as f:
            f.write(config_text(hist_data))
        cfg = kconfig.loads(config_text(hist_data), source="benchmark")
        os.makedirs(hist_data)
        shutil.copytree(cache, os.path.join(hist_data, "cache"))
        shutil.copy2(os.path.join(data_dir, "ticket.key"), hist_data)
        say(f"writing {history:,} tickets of history ...")
        made = fill_history(os.path.join(hist_data, "ledger.sqlite3"), cfg.office_id, cfg.tz, history,
                            end_day=dt.datetime.now(cfg.tz).date())
        hist = []
        for i in range(hist_runs):
            say(f"big-ledger run {i + 1}/{hist_runs} ...")
            hist.append(one_run(hist_config, os.path.join(hist_data, "printer.out")))
        bare = bare_python()

    ready = [r["ready"] for r in warm]
    rss = [r["VmRSS"] for r in warm + [cold] + hist]
    hwm = [r["VmHWM"] for r in warm + [cold] + hist]
    print("# Startup: process start to ready-to-issue, and memory\n")
    print(f"Machine: {machine()}")
    print(f"`{os.path.basename(sys.executable)} -m kiosk run --config FILE`: keyboard buttons on a stdin pipe, "
          f"file printer, 4 services; {runs} warm runs + 1 cold; {len(PRESSES)} presses per run "
          f"({total_printed} tickets printed in all)\n")
    rows = [
        ["cold: new data dir, no escpos cache", 1, ms(cold["ready"]), ms(cold["ready"]),
         f"<= {ms(TARGET_READY_S)}", verdict(cold["ready"] <= TARGET_READY_S)],
        ["warm: cache, ledger, key exist", runs, ms(percentile(ready, 50)), ms(max(ready)),
         f"<= {ms(TARGET_READY_S)}", verdict(max(ready) <= TARGET_READY_S)],
        [f"warm, ledger with {made['tickets']:,} tickets", hist_runs, ms(percentile([r["ready"] for r in hist], 50)),
         ms(max(r["ready"] for r in hist)), f"<= {ms(TARGET_READY_S)}",
         verdict(max(r["ready"] for r in hist) <= TARGET_READY_S)],
        ["reference: `python -c pass` (start to exit)", 5, ms(bare["start_s"]), "", "", ""],
    ]
    print(table(["Popen -> READY=1 (sd_notify)", "runs", "p50", "max", "target", "result"], rows))

    print("\n## After ready: presses through stdin\n")
    first = [r["first_ticket"] for r in warm]
    every = [r["all_tickets"] for r in warm]
    print(table(["", "cold", "warm p50", "warm max"], [
        ["first press -> its ticket in the printer file", ms(cold["first_ticket"]), ms(percentile(first, 50)),
         ms(max(first))],
        [f"{len(PRESSES)} presses -> all tickets in the file", ms(cold["all_tickets"]),
         ms(percentile(every, 50)), ms(max(every))],
    ]))

    print(f"\n## Resident memory after {len(PRESSES)} tickets (/proc/<pid>/status)\n")
    rows = [
        ["kiosk VmRSS", mb(cold["VmRSS"]), mb(percentile(rss, 50)), mb(max(rss)), f"<= {mb(TARGET_RSS_KB)}",
         verdict(max(rss) <= TARGET_RSS_KB)],
        ["kiosk VmHWM (peak)", mb(cold["VmHWM"]), mb(percentile(hwm, 50)), mb(max(hwm)),
         f"<= {mb(TARGET_RSS_KB)}", verdict(max(hwm) <= TARGET_RSS_KB)],
        ["kiosk RssAnon / RssFile", f"{mb(cold['RssAnon'])} / {mb(cold['RssFile'])}",
         f"{mb(warm[0]['RssAnon'])} / {mb(warm[0]['RssFile'])}", "", "", ""],
        [f"kiosk VmRSS / VmHWM, ledger with {made['tickets']:,} tickets",
         f"{mb(hist[0]['VmRSS'])} / {mb(hist[0]['VmHWM'])}", "", "", "", ""],
        ["kiosk threads", cold["Threads"], warm[0]["Threads"], "", "", ""],
        ["reference: bare `python -c` VmRSS / VmHWM", f"{mb(bare['VmRSS'])} / {mb(bare['VmHWM'])}", "", "", "", ""],
    ]
    print(table(["", "cold", "p50 (all runs)", "max", "target", "result"], rows))
    print(f"\nescpos capabilities cache written by the cold run: {', '.join(cache_files) or 'NONE'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
