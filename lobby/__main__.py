"""``python -m lobby --config FILE`` serves the lobby; ``... hash-password`` makes a staff hash."""

import argparse
import getpass
import logging
import sys

from kiosk.seam import ConfigError


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="antrean-lobby", description="The office's lobby page and staff tools.")
    parser.add_argument("--config", help="the kiosk's TOML file (its [lobby] section); default $KIOSK_CONFIG")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("serve", help="serve the lobby page (the default)")
    sub.add_parser("hash-password", help="read a staff password from stdin, print its hash for "
                                         "[lobby] staff_password_hash")
    args = parser.parse_args(argv)
    if args.command == "hash-password":
        return hash_password()
    return serve(args.config)


def hash_password() -> int:
    from werkzeug.security import generate_password_hash

    if sys.stdin.isatty():
        password = getpass.getpass("Staff password: ")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if len(password) < 10:
        print(f"the password is {len(password)} characters; use at least 10", file=sys.stderr)
        return 2
    print(generate_password_hash(password))
    return 0


def serve(config_path: str | None) -> int:
    from lobby.app import create_app
    from lobby.serve import LobbyServer

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        app = create_app({"CONFIG_PATH": config_path} if config_path else None)
    except ConfigError as exc:
        print("the configuration has problems:\n  " + "\n  ".join(exc.problems), file=sys.stderr)
        return 2
    lobby = app.config["LOBBY"]
    server = LobbyServer(app, lobby.host, lobby.port)
    logging.getLogger("lobby").info("lobby page on %s", server.url)
    if not lobby.staff_password_hash:
        logging.getLogger("lobby").warning(
            "staff actions are disabled: set [lobby] staff_password_hash (python -m lobby hash-password)")
    server.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
