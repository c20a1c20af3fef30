"""Network probes: ICMP, TCP connect, DNS, HTTP(S). Each returns a ProbeResult, never raises."""
