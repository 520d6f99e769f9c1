"""Google Drive links, the way Drive answers them: the authors host the released checkpoints there.

For a file id, Drive's download address (`DEFAULT_DRIVE_URL?export=download&id=ID`) gives a small
file at once. A large one (every released checkpoint) first gets an HTML page ("Google Drive can't
scan this file for viruses") holding a form; the form's action and hidden fields (id, export,
confirm, uuid), sent back as a GET, give the file. Any other page (quota exceeded, not shared,
removed) is an answer without the file: the caller says so and saves nothing.

`$SOCIALMAE_RT_DRIVE_URL` replaces Drive's address (a mirror, or the tests' local server).
"""

from __future__ import annotations

import html
import os
import re
import urllib.parse
from html.parser import HTMLParser

DRIVE_URL_ENV = "SOCIALMAE_RT_DRIVE_URL"
DEFAULT_DRIVE_URL = "https://drive.google.com/uc"
DRIVE_HOSTS = ("drive.google.com", "drive.usercontent.google.com", "docs.google.com")
_ID = re.compile(r"^[A-Za-z0-9_-]{20,}$")


def is_google_drive(link: str) -> bool:
    return urllib.parse.urlparse(link).hostname in DRIVE_HOSTS or bool(_ID.match(link))


def file_id(link: str) -> str:
    """The file id in a Drive link (`.../file/d/ID/view`, `...?id=ID`) or a bare id."""
    if _ID.match(link):
        return link
    parsed = urllib.parse.urlparse(link)
    found = re.search(r"/(?:file/)?d/([A-Za-z0-9_-]{20,})", parsed.path)
    if found:
        return found.group(1)
    ids = urllib.parse.parse_qs(parsed.query).get("id")
    if ids and _ID.match(ids[0]):
        return ids[0]
    raise ValueError(f"{link}: not a Google Drive file link (expected .../file/d/ID/... or ...?id=ID)")


def download_url(file_id: str) -> str:
    base = os.environ.get(DRIVE_URL_ENV) or DEFAULT_DRIVE_URL
    return f"{base}?{urllib.parse.urlencode({'export': 'download', 'id': file_id})}"


class _PageReader(HTMLParser):
    """The forms (action, hidden fields) and the title of a Drive page."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[tuple[str, dict[str, str]]] = []
        self.title = ""
        self._in_title = False
        self._in_form = False

    def handle_starttag(self, tag: str, attrs) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "form":
            self.forms.append((values.get("action", ""), {}))
            self._in_form = True
        elif tag == "input" and self._in_form and values.get("name"):
            self.forms[-1][1][values["name"]] = values.get("value", "")
        elif tag == "title":
            self._in_title = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._in_form = False
        elif tag == "title":
            self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data


def confirmation_url(page: str, page_url: str) -> str | None:
    """Where Drive's "can't scan for viruses" page sends its download button (None: no such form)."""
    reader = _PageReader()
    reader.feed(page)
    for action, fields in reader.forms:
        if "download" in action and fields.get("id"):
            target = urllib.parse.urljoin(page_url, html.unescape(action))
            return f"{target}?{urllib.parse.urlencode(fields)}"
    return None


def page_title(page: str) -> str:
    reader = _PageReader()
    reader.feed(page)
    text = " ".join(reader.title.split())
    return text or " ".join(re.sub(r"<[^>]+>", " ", page).split())[:80]
