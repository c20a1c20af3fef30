"""An ESC/POS thermal printer emulator on real links: a pseudo-terminal and TCP."""
