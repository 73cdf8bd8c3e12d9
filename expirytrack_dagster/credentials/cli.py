"""``expirytrack login``, ``logout`` and ``status``: the Upstox login from the terminal, no secret shown."""

from __future__ import annotations

import argparse
import getpass
import os
import ssl
import sys
from datetime import datetime, timedelta

from expirytrack_dagster.calendar import IST
from expirytrack_dagster.credentials.deadline import TOKEN_KINDS, describe_deadline, token_deadline
from expirytrack_dagster.credentials.guard import (
    DEFAULT_MARGIN,
    ENV_TOKEN,
    active_token,
    check_deadline,
)
from expirytrack_dagster.credentials.oauth import (
    APPS_PAGE,
    DEFAULT_REDIRECT_URI,
    DEFAULT_TIMEOUT_S,
    LoginError,
    login_with_browser,
    parse_redirect_uri,
)
from expirytrack_dagster.credentials.store import (
    ENV_DIR,
    ENV_KEY,
    ENV_KEY_FILE,
    AppCredentials,
    Credentials,
    CredentialStore,
    CredentialStoreError,
    StoredToken,
)
from expirytrack_dagster.upstox.client import UPSTOX_BASE_URL, token_fingerprint
from expirytrack_dagster.upstox.errors import TokenExpired

ENV_API_KEY = "UPSTOX_API_KEY"
ENV_API_SECRET = "UPSTOX_API_SECRET"

LOGIN_EPILOG = f"""\
The browser login needs an Upstox developer app ({APPS_PAGE})
whose redirect URI is exactly
  {DEFAULT_REDIRECT_URI}
(or the one given with --redirect-uri). A callback server listens on 127.0.0.1
only, for one request. The API key and secret are asked once (or read from
{ENV_API_KEY} / {ENV_API_SECRET}) and stored with the token.

--token reads a token (access, extended or analytics) from standard input,
never from the command line:
  pbpaste | expirytrack login --token --kind analytics

Stored encrypted (Fernet) in ${ENV_DIR} (default ~/.config/expirytrack),
with the key in ${ENV_KEY} or the file ${ENV_KEY_FILE}
(default: credentials.key beside the store); files 0600, directory 0700.
{ENV_TOKEN}, when set, wins over the stored token."""


def _err(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)


def _deadline_note(deadline: datetime | None, now: datetime) -> None:
    if deadline is not None and deadline - now <= DEFAULT_MARGIN:
        print(
            "Warning: that is inside the 30-minute margin, so runs will refuse this token. "
            "Upstox tokens die at 03:30 IST whenever they were issued: log in again after 03:30."
        )


def _env_token_note() -> None:
    if os.environ.get(ENV_TOKEN):
        print(
            f"Note: {ENV_TOKEN} is set here and wins over the stored login; unset it to use this."
        )


def _ask_app(args: argparse.Namespace, stored: AppCredentials | None) -> AppCredentials:
    if args.reset_app:
        stored = None
    api_key = os.environ.get(ENV_API_KEY) or (stored.api_key if stored else "")
    api_secret = os.environ.get(ENV_API_SECRET) or (stored.api_secret if stored else "")
    if not api_key:
        api_key = input(f"Upstox API key (from {APPS_PAGE}): ").strip()
    if not api_secret:
        api_secret = getpass.getpass("Upstox API secret (input hidden): ").strip()
    if not api_key or not api_secret:
        raise LoginError("an API key and secret are needed for the browser login")
    redirect_uri = args.redirect_uri or (stored.redirect_uri if stored else DEFAULT_REDIRECT_URI)
    parse_redirect_uri(redirect_uri)
    return AppCredentials(api_key, api_secret, redirect_uri)


def _verify(args: argparse.Namespace) -> ssl.SSLContext | bool:
    return ssl.create_default_context(cafile=args.ca_cert) if args.ca_cert else True


def _login_browser(args: argparse.Namespace, store: CredentialStore) -> int:
    creds = store.load()
    app = _ask_app(args, creds.app)
    if app != creds.app:
        store.save_app(app)  # typed once: a timeout or closed browser does not cost a retype
    print(f"Logging in to Upstox ({args.base_url}) with API key {app.api_key}.")
    print(f"Redirect URI: {app.redirect_uri}")
    print(f"  (register exactly this as your app's redirect URI at {APPS_PAGE})")

    def show(url: str) -> None:
        print(f"Open this address to log in (waiting {args.timeout:.0f}s; Ctrl-C cancels):\n")
        print(f"  {url}\n", flush=True)

    token = login_with_browser(
        app,
        show_url=show,
        open_browser=not args.no_browser,
        base_url=args.base_url,
        verify=_verify(args),
        timeout_s=args.timeout,
    )
    store.save_token(token)
    now = datetime.now(IST)
    who = f"{token.user_name} ({token.user_id})" if token.user_name else "the Upstox user"
    print(f"Logged in as {who}. The token is stored encrypted in {store.path}.")
    print(f"It {describe_deadline(token.expires_at, now)}: log in again after that.")
    _deadline_note(token.expires_at, now)
    _env_token_note()
    return 0


def _read_token(kind: str) -> str:
    if sys.stdin.isatty():
        raw = getpass.getpass(f"Paste the Upstox {kind} token (input hidden): ")
    else:
        raw = sys.stdin.read()
    token = raw.strip()
    if not token or any(c.isspace() or not c.isprintable() for c in token) or len(token) > 8192:
        raise LoginError("standard input held no token (one line, no spaces); nothing was stored")
    return token


ANALYTICS_LIFETIME = timedelta(days=365)
"""Upstox's Analytics Token lasts one year; assumed from when it is stored unless it says."""


def _login_analytics(store: CredentialStore) -> int:
    """Store the one-year Analytics Token beside the daily token, for live capture."""
    token = _read_token("Analytics")
    now = datetime.now(IST)
    deadline = token_deadline(token, "analytics", None, now) or now + ANALYTICS_LIFETIME
    store.save_analytics_token(
        StoredToken(token, "analytics", obtained_at=now, expires_at=deadline)
    )
    print(f"Stored the Analytics Token {token_fingerprint(token)} encrypted in {store.path}.")
    print(f"It {describe_deadline(deadline, now)}. Live capture uses it; the daily login stays")
    print("for expired-instrument data.")
    return 0


def _login_pasted(args: argparse.Namespace, store: CredentialStore) -> int:
    token = _read_token(args.kind)
    now = datetime.now(IST)
    deadline = token_deadline(token, args.kind, None, now)
    store.save_token(StoredToken(token, args.kind, obtained_at=now, expires_at=deadline))
    print(f"Stored the {args.kind} token {token_fingerprint(token)} encrypted in {store.path}.")
    print(f"It {describe_deadline(deadline, now)}.")
    _deadline_note(deadline, now)
    _env_token_note()
    return 0


TOKEN_ON_COMMAND_LINE = (
    "a token on the command line stays in the shell history and shows in `ps` to other users, "
    "so it is refused and was not stored (nor shown here): pipe it in instead, e.g. "
    "`pbpaste | expirytrack login --token`, or run `expirytrack login --token` and paste it"
)


def refuse_extra_login_arguments() -> int:
    """``expirytrack login`` given stray values (a token, perhaps): refuse without repeating them."""
    _err(f"expirytrack login takes no values besides its options; {TOKEN_ON_COMMAND_LINE}")
    return 2


def cmd_login(args: argparse.Namespace) -> int:
    """Log in through the browser, or store a pasted token (``--token``)."""
    for flag, value in (("--token", args.token), ("--analytics-token", args.analytics_token)):
        if isinstance(value, str):  # --token VALUE or --token=VALUE
            _err(f"{flag} takes no value; {TOKEN_ON_COMMAND_LINE}")
            return 2
    store = CredentialStore()
    try:
        if args.analytics_token:
            return _login_analytics(store)
        return _login_pasted(args, store) if args.token else _login_browser(args, store)
    except (LoginError, CredentialStoreError) as exc:
        _err(str(exc))
        return 2
    except KeyboardInterrupt:
        _err("login cancelled; no token was stored")
        return 130


def cmd_logout(args: argparse.Namespace) -> int:
    """Forget the stored token (``--all``: also the API app, the store file and its key)."""
    store = CredentialStore()
    if args.all:
        removed = store.destroy()
        print(f"Removed {', '.join(map(str, removed))}." if removed else "Nothing was stored.")
    else:
        try:
            forgot = store.forget_token()
        except CredentialStoreError as exc:
            _err(f"{exc}\n(`expirytrack logout --all` deletes the store without reading it)")
            return 2
        print("Logged out: the stored token is gone." if forgot else "No token was stored.")
    if os.environ.get(ENV_TOKEN):
        print(f"Note: {ENV_TOKEN} is still set in this environment, and runs still use it.")
    return 0


def _describe_token(stored: StoredToken | None, fingerprint: str) -> str:
    if stored is None:
        return f"access token (assumed), fingerprint {fingerprint}"
    via = f", issued by {stored.base_url}" if stored.base_url else ""
    return (
        f"{stored.kind} token, fingerprint {fingerprint}, "
        f"stored {stored.obtained_at.astimezone(IST):%Y-%m-%d %H:%M} IST{via}"
    )


def cmd_status(args: argparse.Namespace) -> int:
    """Who is logged in, where the token comes from, how long it has left. Exit 0 when usable."""
    now = datetime.now(IST)
    margin = timedelta(minutes=args.margin_minutes)
    store = CredentialStore()
    creds, store_problem = Credentials(), None
    try:
        creds = store.load()
    except CredentialStoreError as exc:
        store_problem = str(exc)
    token = active_token(os.environ.get(ENV_TOKEN), None if store_problem else store, now=now)
    print("Upstox login")
    if token is None:
        print("  token   : none (not logged in)")
    else:
        wins = " (wins over the store)" if creds.token and token.stored is None else ""
        print(f"  source  : {token.source}{wins}")
        stored = token.stored
        if stored and stored.user_name:
            email = f", {stored.email}" if stored.email else ""
            print(f"  user    : {stored.user_name} ({stored.user_id}){email}")
        print(f"  token   : {_describe_token(stored, token.fingerprint)}")
        assumed = " (assumed: issue time unknown)" if token.deadline_assumed else ""
        print(f"  expiry  : {describe_deadline(token.expires_at, now)}{assumed}")
    if creds.analytics is not None:
        analytics = creds.analytics
        print(
            f"  live    : Analytics Token {token_fingerprint(analytics.access_token)}, "
            f"{describe_deadline(analytics.expires_at, now)} (live capture uses it)"
        )
    if creds.app:
        print(f"  API app : key {creds.app.api_key}, redirect URI {creds.app.redirect_uri}")
    print(f"  store   : {store.path} (key from {store.key_source})")
    if store_problem:
        print(f"  problem : {store_problem}")
    try:
        check_deadline(token, margin=margin, now=now)
    except TokenExpired as exc:
        print(f"  ready   : no — {exc.message}")
        return 1
    print(f"  ready   : yes — runs may start ({args.margin_minutes}-minute margin)")
    return 0


def _seconds(text: str) -> float:
    """argparse type: a positive number of seconds."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds, e.g. 300")
    return value


def _minutes(text: str) -> int:
    """argparse type: a whole number of minutes >= 0."""
    if not text.strip().isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of minutes >= 0")
    return int(text)


def add_credential_commands(commands: argparse._SubParsersAction) -> None:
    """Register ``login``, ``logout`` and ``status`` on the ``expirytrack`` sub-command parser."""
    login = commands.add_parser(
        "login",
        help="log in to Upstox in the browser (or --token from stdin); stores the token encrypted",
        description="Log in to Upstox and store the access token encrypted.",
        epilog=LOGIN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    login.hides_values = True  # argparse errors must not repeat a token typed in a wrong place
    login.add_argument(
        "--token",
        nargs="?",
        const=True,
        default=False,
        help="read a token from standard input instead (never give it here)",
    )
    login.add_argument(
        "--analytics-token",
        nargs="?",
        const=True,
        default=False,
        help="read the one-year Analytics Token from standard input and store it beside the "
        "daily token, for live capture (never give it here)",
    )
    login.add_argument(
        "--kind", choices=TOKEN_KINDS, default="access", help="with --token: what the token is"
    )
    login.add_argument(
        "--redirect-uri",
        default=None,
        help=f"loopback redirect URI (default {DEFAULT_REDIRECT_URI})",
    )
    login.add_argument(
        "--timeout",
        type=_seconds,
        default=DEFAULT_TIMEOUT_S,
        help="seconds to wait for the browser",
    )
    login.add_argument("--no-browser", action="store_true", help="only print the login URL")
    login.add_argument(
        "--reset-app", action="store_true", help="ask for the API key and secret again"
    )
    login.add_argument("--base-url", default=UPSTOX_BASE_URL, help="API host (a sandbox's URL)")
    login.add_argument("--ca-cert", default=None, help="extra CA certificate (the sandbox's)")
    login.set_defaults(func=cmd_login)
    logout = commands.add_parser("logout", help="forget the stored Upstox token")
    logout.add_argument(
        "--all", action="store_true", help="also the API key/secret, the store and its key file"
    )
    logout.set_defaults(func=cmd_logout)
    status = commands.add_parser(
        "status", help="who is logged in to Upstox, the token's source and time left"
    )
    status.add_argument(
        "--margin-minutes",
        type=_minutes,
        default=int(DEFAULT_MARGIN.total_seconds() // 60),
        help="call the token unusable when it dies within this many minutes",
    )
    status.set_defaults(func=cmd_status)
