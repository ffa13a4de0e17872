"""Building PostgreSQL DSNs and keeping passwords out of logs and error messages.

Redaction is deliberately paranoid: when a DSN is ambiguous (an unencoded ``@`` in the
password, say) it hides too much rather than too little.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, quote, unquote

REDACTED = "***"

_URL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
# password-carrying parameters in a URL query string: ?password=...&sslpassword=...
_QUERY_SECRET_RE = re.compile(r"(?i)([?&](?:ssl)?password=)[^&#]*")
# libpq key=value form: password=secret, password = 'sec ret', password='it\'s'
_KV_RE = re.compile(r"(\w+)\s*=\s*('(?:[^'\\]|\\.)*'?|\S*)")
_KV_SECRET_RE = re.compile(r"(?i)\b((?:ssl)?password\s*=\s*)('(?:[^'\\]|\\.)*'?|\S*)")


def _split_url(dsn: str) -> tuple[str, str, str] | None:
    """(scheme://, userinfo, rest after the '@') of a URL DSN, or None if not a URL.

    The userinfo ends at the *last* '@' so that an unencoded '@' in a password is hidden
    whether a parser splits at the first or the last one. userinfo is "" when there is none.
    """
    match = _URL_RE.match(dsn)
    if match is None:
        return None
    scheme = match.group(0)
    rest = dsn[len(scheme) :]
    at = rest.rfind("@")
    if at < 0:
        return scheme, "", rest
    return scheme, rest[:at], rest[at + 1 :]


def redact_dsn(dsn: str) -> str:
    """``dsn`` with every password replaced by ``***`` (URL userinfo, URL query, key=value)."""
    parts = _split_url(dsn)
    if parts is None:
        return _KV_SECRET_RE.sub(lambda m: m.group(1) + REDACTED, dsn)
    # query secrets first: their values may contain the '@' that _split_url looks for
    parts = _split_url(_QUERY_SECRET_RE.sub(lambda m: m.group(1) + REDACTED, dsn))
    assert parts is not None
    scheme, userinfo, rest = parts
    if not userinfo:
        return scheme + rest
    user, sep, password = userinfo.partition(":")
    return f"{scheme}{user}{sep}{REDACTED if password else ''}@{rest}"


def dsn_passwords(dsn: str) -> list[str]:
    """Every password written in ``dsn``, both as written and URL-decoded."""
    found: list[str] = []
    parts = _split_url(dsn)
    if parts is None:
        for match in _KV_SECRET_RE.finditer(dsn):
            found.append(_unquote_kv(match.group(2)))
    else:
        found.extend(m.group(0).split("=", 1)[1] for m in _QUERY_SECRET_RE.finditer(dsn))
        stripped = _split_url(_QUERY_SECRET_RE.sub("", dsn))
        assert stripped is not None
        _user, sep, password = stripped[1].partition(":")
        if sep:
            found.append(password)
    decoded = [unquote(p) for p in found]
    return [p for p in dict.fromkeys(found + decoded) if p]


def redact_text(text: str, dsn: str) -> str:
    """``text`` (e.g. an exception message) with the DSN and its passwords masked."""
    if dsn and dsn in text:
        text = text.replace(dsn, redact_dsn(dsn))
    for password in sorted(dsn_passwords(dsn), key=len, reverse=True):
        text = text.replace(password, REDACTED)
    return text


def build_dsn(
    host: str,
    port: int | str | None,
    database: str,
    user: str,
    password: str | None = None,
) -> str:
    """A ``postgresql://`` URL with every part URL-quoted.

    ``host`` may be a hostname, an IPv6 address, or a directory holding a unix socket
    (absolute path); the latter goes into the ``host`` query parameter as libpq expects.
    """
    auth = quote(user, safe="")
    if password:
        auth += ":" + quote(password, safe="")
    db = quote(database, safe="")
    port_text = "" if port in (None, "") else str(int(port))
    if host.startswith("/"):
        query = "host=" + quote(host, safe="")
        if port_text:
            query += "&port=" + port_text
        return f"postgresql://{auth}@/{db}?{query}"
    hostpart = f"[{host}]" if ":" in host and not host.startswith("[") else host
    if port_text:
        hostpart += ":" + port_text
    return f"postgresql://{auth}@{hostpart}/{db}"


def dsn_identity(dsn: str) -> tuple[str, str, str, str]:
    """(host, port, database, user) that ``dsn`` connects to: what tells two databases apart.
    The password is no part of it. Parts left out take libpq's fixed defaults (port 5432,
    database = user); host "" is the local socket."""
    parts = _split_url(dsn)
    if parts is None:
        params = {k.lower(): _unquote_kv(v) for k, v in _KV_RE.findall(dsn)}
    else:
        params = _url_params(*parts)
    user = params.get("user", "")
    host = params.get("host", "").lower()
    port = params.get("port", "") or "5432"
    database = params.get("dbname") or params.get("database") or user
    return host, port, database, user


def _url_params(_scheme: str, userinfo: str, rest: str) -> dict[str, str]:
    rest, _, query = rest.partition("?")
    hostport, _, path = rest.partition("/")
    if hostport.startswith("["):  # [IPv6]:port
        host, _, port = hostport[1:].partition("]")
        port = port.removeprefix(":")
    elif "," in hostport or ":" not in hostport:  # several hosts: kept as written
        host, port = hostport, ""
    else:
        host, _, port = hostport.rpartition(":")
    params = {"user": unquote(userinfo.partition(":")[0]), "host": unquote(host), "port": port}
    params["dbname"] = unquote(path)
    for key, value in parse_qsl(query):
        params[key.lower()] = value
    return params


def _unquote_kv(value: str) -> str:
    if value.startswith("'"):
        return value.strip("'").replace("\\'", "'").replace("\\\\", "\\")
    return value
