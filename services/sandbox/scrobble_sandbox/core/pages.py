"""HTML consent pages a browser can complete, and the redirects that end an OAuth flow."""

import html
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from aiohttp import web

from scrobble_sandbox.credentials import SANDBOX_USER

OOB_REDIRECT = "urn:ietf:wg:oauth:2.0:oob"


def consent_page(
    *,
    service: str,
    action: str,
    hidden: dict[str, str],
    prompt: str,
    user: str = SANDBOX_USER,
    fields: list[tuple[str, str, str]] | None = None,
) -> web.Response:
    """A page with Approve and Deny buttons that posts `hidden` back to `action`, plus
    visible text inputs `fields` as (name, label, prefilled value), e.g. a device's code."""
    inputs = "\n".join(
        f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
        for k, v in hidden.items()
    )
    for name, label, value in fields or []:
        n = html.escape(name)
        inputs += (
            f'\n<label for="{n}">{html.escape(label)}</label> '
            f'<input type="text" id="{n}" name="{n}" value="{html.escape(value)}" required '
            f'autocomplete="off" autocapitalize="characters" spellcheck="false">'
        )
    body = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(service)} (sandbox)</title></head>
<body>
<h1>{html.escape(service)} sandbox</h1>
<p>{html.escape(prompt)}</p>
<form method="post" action="{html.escape(action)}">
{inputs}
<label>Sign in as <input type="text" name="sandbox_user" value="{html.escape(user)}"></label>
<button type="submit" name="decision" value="approve" id="approve">Approve</button>
<button type="submit" name="decision" value="deny" id="deny">Deny</button>
</form>
</body></html>
"""
    return web.Response(text=body, content_type="text/html")


def message_page(title: str, message: str, status: int = 200) -> web.Response:
    body = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title></head>"
        f'<body><h1>{html.escape(title)}</h1><p id="message">{html.escape(message)}</p>'
        f"</body></html>"
    )
    return web.Response(text=body, content_type="text/html", status=status)


def with_query(url: str, params: dict[str, str]) -> str:
    """Add parameters to a URL that may already carry a query string."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    query.extend(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


def redirect(url: str, params: dict[str, str]) -> web.Response:
    """302 to `url` with `params`; `state` is only echoed when the client sent one."""
    clean = {k: v for k, v in params.items() if not (k == "state" and not v)}
    return web.Response(status=302, headers={"Location": with_query(url, clean)})


def decision_user(form: "dict[str, str]") -> str:
    """Who approved: the name typed on the page, else the default sandbox user."""
    name = form.get("sandbox_user", "").strip()
    return name or SANDBOX_USER
