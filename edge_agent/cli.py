"""The ``edge-agent`` command (being built)."""


def main(argv=None) -> int:
    print("edge-agent: not built yet")
    return 1
