"""Keep secrets out of what a step's failure and logs send to the orchestrator.

A step marks the values it must not leak::

    from durable.secrets import mark_secret

    @wf.step
    def charge(order, ctx):
        key = ctx.secret(os.environ["PAYMENT_API_KEY"])  # or mark_secret(...)
        ...

Before a step's report leaves the worker, every marked value in its captured log lines
and in its error (message and traceback) is replaced by ``***``. A value marked inside a
step counts for that step attempt only (the whole attempt: lines logged before the
value was marked are masked too); one marked outside any step (at import, say) counts
for every step the process runs.

On top of the marked values, :func:`redact` always masks a few obvious shapes:

- ``key=value`` and ``key: value`` (quotes allowed, as in ``'password': 'x'``) where
  the key ends with ``password``, ``passwd``, ``pwd``, ``secret``, ``token``,
  ``api_key``, ``access_key``, ``private_key``, ``secret_key`` or ``signing_key``
  (with ``-`` or no separator too), e.g. ``db_password``, ``client_secret``,
  ``X-Api-Key``: the key is kept, the value becomes ``***``;
- ``Authorization: <scheme> <credentials>`` and a bare ``Bearer <token>``: the
  credentials become ``***``;
- a password in a URL, ``scheme://user:pass@host``: ``scheme://user:***@host``.

This is best effort, not a guarantee: a secret split across lines, encoded (base64,
URL-quoted) or transformed is not recognised. Mark every secret a step handles.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Iterable, Iterator
from contextvars import ContextVar

__all__ = ["MASK", "mark_secret", "marked_secrets", "redact", "secret_scope"]

MASK = "***"
"""What a secret is replaced by."""

_SCOPE: ContextVar[set[str] | None] = ContextVar("durable_secrets", default=None)
_GLOBAL: set[str] = set()
_GLOBAL_LOCK = threading.Lock()

_KEYS = r"passw(?:or)?d|pwd|secret|token|(?:api|access|private|secret|signing)[_-]?key"
_KEY_VALUE = re.compile(
    rf"""(?ix)
    (\b[\w.-]*(?:{_KEYS}))          # the key: password, db_password, client_secret, ...
    (["']?\s*[=:]\s*)               # = or :, maybe after a closing quote
    (?:
        (["'])(?:(?!\3).)+\3        # a quoted value
      | (?!\*\*\*)[^\s"',;&}})\]]+   # or a bare one, up to a separator
    )
    """
)
_AUTHORIZATION = re.compile(r"(?i)\b((?:proxy-)?authorization[\"']?\s*[=:]\s*[\"']?)[^\r\n\"']+")
_BEARER = re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]+")
_URL_PASSWORD = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s:/@]*:)[^\s/@]+(@)")


def mark_secret(value: str) -> str:
    """Mark ``value`` as secret: it is masked in the step's logs and error; returns it.

    Inside a step (sync or async, in the step's own thread or task) the mark lasts for
    the current attempt; outside any step, for every step this process runs. The empty
    string is ignored.

    Raises:
        TypeError: ``value`` is not a string.
    """
    if not isinstance(value, str):
        raise TypeError(f"a secret must be a string, got {type(value).__name__}")
    if value:
        scope = _SCOPE.get()
        if scope is not None:
            scope.add(value)
        else:
            with _GLOBAL_LOCK:
                _GLOBAL.add(value)
    return value


def marked_secrets() -> frozenset[str]:
    """The values marked for the current step attempt, and those marked process-wide."""
    scope = _SCOPE.get()
    with _GLOBAL_LOCK:
        marked = set(_GLOBAL)
    return frozenset(marked | scope if scope else marked)


@contextlib.contextmanager
def secret_scope(scope: set[str]) -> Iterator[set[str]]:
    """Collect the values marked within the block (a step attempt) in ``scope``.

    The worker opens one per attempt; code run in a copy of the block's context (the
    step's thread) marks into the same set.
    """
    token = _SCOPE.set(scope)
    try:
        yield scope
    finally:
        _SCOPE.reset(token)


def _mask_key_value(match: re.Match[str]) -> str:
    quote = match.group(3) or ""
    return f"{match.group(1)}{match.group(2)}{quote}{MASK}{quote}"


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with each of ``secrets`` and the built-in shapes replaced by ``***``.

    ``secrets`` are replaced longest first, so a secret containing another is masked
    whole. Process-wide marks are not added here: pass :func:`marked_secrets`.
    """
    if not text:
        return text
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, MASK)
    text = _AUTHORIZATION.sub(lambda m: _mask_authorization(m), text)
    text = _BEARER.sub(rf"\g<1>{MASK}", text)
    text = _URL_PASSWORD.sub(rf"\g<1>{MASK}\g<2>", text)
    return _KEY_VALUE.sub(_mask_key_value, text)


def _mask_authorization(match: re.Match[str]) -> str:
    """``Authorization: Scheme credentials`` -> ``Authorization: Scheme ***``."""
    value = match.group(0)[len(match.group(1)) :]
    scheme, space, _ = value.partition(" ")
    if space and scheme.isalpha():
        return f"{match.group(1)}{scheme} {MASK}"
    return f"{match.group(1)}{MASK}"
