"""``homepage app``: serve the dashboard on a data directory, on loopback unless asked otherwise,
with a login before it listens beyond, and stopped together with this command."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from pathlib import Path

from engine.cli.common import load_data
from engine.core.access import DEFAULT_ADDRESS, is_loopback, login_kind
from engine.core.errors import DataError

PROJECT_ROOT = Path(__file__).resolve().parents[2]
APP_SCRIPT = PROJECT_ROOT / "dashboard" / "streamlit_app.py"
DEMO_DIR = PROJECT_ROOT / "data" / "demo"
SECRETS = PROJECT_ROOT / ".streamlit" / "secrets.toml"
FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def split_app_args(rest: list[str]) -> tuple[str | None, list[str]]:
    """``[DIR] [streamlit args...]``: a first argument that is no option is the data directory."""
    if rest and not rest[0].startswith("-"):
        return rest[0], rest[1:]
    return None, rest


def streamlit_option(args: list[str], name: str) -> str | None:
    """The value of ``--name VALUE`` or ``--name=VALUE`` among streamlit's arguments (the last wins)."""
    value = None
    for i, arg in enumerate(args):
        if arg == f"--{name}" and i + 1 < len(args):
            value = args[i + 1]
        elif arg.startswith(f"--{name}="):
            value = arg.split("=", 1)[1]
    return value


def server_args(streamlit_args: list[str], environ=os.environ, secrets_path: Path = SECRETS) -> tuple[list[str], str, str | None]:
    """Streamlit's arguments with the listening address made explicit, and the login in force.

    Returns:
        (the arguments, the address, the login kind: ``password``, ``oidc`` or None).

    Raises:
        DataError: an address beyond loopback without a login configured, or a malformed hash.
    """
    args = list(streamlit_args)
    address = streamlit_option(args, "server.address")
    if address is None:
        address = DEFAULT_ADDRESS
        args += ["--server.address", address]
    try:
        kind = login_kind(environ, secrets_path)
    except ValueError as exc:
        raise DataError(str(exc)) from None
    if not is_loopback(address) and kind is None:
        raise DataError(
            f"refusing to listen on {address} without a login: set HOMEPAGE_PASSWORD_HASH to the output of "
            f"`homepage hash-password`, or configure Streamlit's login ([auth]) in {secrets_path}"
        )
    return args, address, kind


def cmd_app(args) -> int:
    """Run the Streamlit dashboard on a data directory (the demo store, generated when missing)."""
    from engine.data.tables import table_path

    data_dir = Path(args.dir) if args.dir else DEMO_DIR
    if args.dir is None and table_path(data_dir, "items", required=False) is None:
        from engine.data.demo_store import generate_demo

        print(f"generating the demo store in {data_dir} ...", file=sys.stderr)
        generate_demo(data_dir)
    if not data_dir.is_dir():
        raise DataError(f"{data_dir}: not a data directory")
    load_data(argparse.Namespace(dir=data_dir))  # a clear error here rather than in the browser
    streamlit_args, address, kind = server_args(args.streamlit_args)
    env = {**os.environ, "HOMEPAGE_DATA": str(data_dir.resolve())}
    command = [sys.executable, "-m", "streamlit", "run", str(APP_SCRIPT), *streamlit_args]
    print(f"serving {data_dir} on {address} ({'login: ' + kind if kind else 'this machine only'})", file=sys.stderr)
    return run_until_stopped(command, env=env, cwd=PROJECT_ROOT)  # the project's .streamlit/config.toml applies


def run_until_stopped(command: list[str], env: dict, cwd: Path) -> int:
    """Run the server as a child and pass SIGTERM, SIGINT and SIGHUP on to it, so that stopping this
    command (a service manager, a script, Ctrl-C) stops the server too; returns its exit code."""
    child = subprocess.Popen(command, env=env, cwd=cwd)

    def forward(signum, _frame) -> None:
        if child.poll() is None:
            child.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in FORWARDED}
    try:
        while True:
            try:
                code = child.wait()
                break
            except KeyboardInterrupt:  # Ctrl-C reaches the child through the terminal too
                forward(signal.SIGINT, None)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0 if code in (0, -signal.SIGTERM, -signal.SIGINT) else code


def cmd_hash_password(args) -> int:
    """Read a password (twice, without echo, or once from standard input) and print its hash."""
    import getpass

    from engine.core.access import PASSWORD_HASH_ENV, hash_password

    if sys.stdin.isatty():
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            raise DataError("the two passwords differ")
    else:
        password = sys.stdin.readline().rstrip("\n")
    try:
        print(hash_password(password))
    except ValueError as exc:
        raise DataError(str(exc)) from None
    print(f"set it as {PASSWORD_HASH_ENV} in the environment of `homepage app`", file=sys.stderr)
    return 0
