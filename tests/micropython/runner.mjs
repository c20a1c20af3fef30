// Runs the button panel firmware's pure-logic modules on a real MicroPython
// (the WebAssembly port, npm @micropython/micropython-webassembly-pyscript).
// Usage: node runner.mjs [test_script.py]   (default: test_firmware.py here)
// The firmware files are copied into the interpreter's filesystem as the
// package /button_panel, exactly as `mpremote cp -r` lays them out on a Pico.
// Prints the script's PASS/FAIL lines; exits 1 if any FAIL or no PASS.
import { readFileSync, readdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript";

const here = dirname(fileURLToPath(import.meta.url));
const firmware = resolve(here, "..", "..", "hardware", "button_panel");
const script = resolve(process.argv[2] || join(here, "test_firmware.py"));

const lines = [];
const out = (text) => { lines.push(text); process.stdout.write(text + "\n"); };
const mp = await loadMicroPython({ stdout: out, stderr: out });

mp.FS.mkdir("/button_panel");
for (const name of readdirSync(firmware)) {
  // main.py needs `machine`, which this port lacks: it is checked by mypy, not run here.
  if (name.endsWith(".py") && name !== "main.py") {
    mp.FS.writeFile("/button_panel/" + name, readFileSync(join(firmware, name), "utf8"));
  }
}

let crashed = false;
try {
  mp.runPython("import sys\nif '/' not in sys.path: sys.path.append('/')\n");
  mp.runPython(readFileSync(script, "utf8"));
} catch (error) {
  crashed = true;
  out("FAIL crashed: " + (error.type || error.name) + ": " + error.message);
}
const passed = lines.filter((l) => l.startsWith("PASS")).length;
const failed = lines.filter((l) => l.startsWith("FAIL")).length;
out(`SUMMARY pass=${passed} fail=${failed}`);
process.exit(crashed || failed || !passed ? 1 : 0);
