"""`weights download`: fetch a released checkpoint when asked, resumably, and verify it.

The only code in the project that touches the network, and only from this command. A download
goes to `<file>.part`; an interrupted one resumes from there with an HTTP Range request; the
file gets its final name (atomic rename) only once its size and sha256 check out, and the hash
is recorded beside it (`<file>.sha256`, sha256sum format) so `weights list` and
`weights import` can tell later whether the file changed.

Google Drive links (the authors host their files there) go through Drive's virus-scan page
(google_drive.py); everything is fetched with the standard library. A web page is never saved
as a checkpoint: one sent instead of the file, or a finished file that does not start like a
checkpoint, is refused in one line and removed.
"""

from __future__ import annotations

import http.client
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from socialmae_rt.weights.google_drive import confirmation_url, download_url, file_id, is_google_drive, page_title
from socialmae_rt.weights.importer import SHA256_SUFFIX, file_sha256

CHUNK = 1 << 20
MAX_PAGE_BYTES = 1 << 20  # a web page answered instead of a file is read this far, for its title
# What a checkpoint starts with: torch.save's zip archive, or a legacy pickle (protocol 2+).
CHECKPOINT_MAGIC = (b"PK\x03\x04", b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05")


class DownloadError(RuntimeError):
    """A download that could not finish, or finished with the wrong file; the message says what next."""


@dataclass
class Download:
    path: Path
    size: int
    sha256: str
    resumed_from: int  # bytes already there from an interrupted attempt


def _progress(total: int | None, initial: int, label: str):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit="B", unit_scale=True, desc=label, file=sys.stderr,
                disable=not sys.stderr.isatty())


def _open(url: str, offset: int, timeout: float):
    """The response for `url` from byte `offset` on (None: nothing after `offset`, the part is whole)."""
    request = urllib.request.Request(url, headers={"Range": f"bytes={offset}-"} if offset else {})
    try:
        return urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and offset:
            return None
        raise DownloadError(f"{url}: the server answered HTTP {err.code} {err.reason}") from err


def _is_page(response) -> bool:
    return response.headers.get_content_type() in ("text/html", "application/xhtml+xml")


def _write(response, url: str, part: Path, offset: int) -> int:
    """Append the response's body to `part` (from `offset` when the server honoured the range);
    -> bytes the part had before."""
    with response:
        if offset and response.status != 206:  # the server ignored the range: start again
            offset = 0
        length = response.headers.get("Content-Length")
        total = None if length is None else offset + int(length)
        mode = "ab" if offset else "wb"
        received = offset
        with open(part, mode) as handle, _progress(total, offset, part.name[:-5]) as bar:
            while True:
                try:
                    block = response.read(CHUNK)
                except (OSError, http.client.HTTPException) as err:  # connection dropped mid-file
                    raise DownloadError(f"{url}: interrupted after {received} of {total or '?'} bytes ({err}); "
                                        "run the same command again to resume") from err
                if not block:
                    break
                handle.write(block)
                received += len(block)
                bar.update(len(block))
        if total is not None and received < total:
            raise DownloadError(f"{url}: interrupted after {received} of {total} bytes; "
                                "run the same command again to resume")
    return offset if mode == "ab" else 0


def _fetch_http(url: str, part: Path, timeout: float) -> int:
    """Append the rest of `url` to `part` (Range from its current size); -> bytes it had before."""
    offset = part.stat().st_size if part.is_file() else 0
    response = _open(url, offset, timeout)
    if response is None:
        return offset
    if _is_page(response):
        with response:
            raise DownloadError(f"{url}: the server sent a web page ({page_title(_read_page(response))!r}), not "
                                "the checkpoint; nothing was saved")
    return _write(response, url, part, offset)


def _read_page(response) -> str:
    return response.read(MAX_PAGE_BYTES).decode("utf-8", errors="replace")


def _fetch_google_drive(link: str, part: Path, timeout: float) -> int:
    """Drive's download address for the link's file id; its virus-scan page answered like its
    download button (google_drive.py)."""
    offset = part.stat().st_size if part.is_file() else 0
    url = download_url(file_id(link))
    response = _open(url, offset, timeout)
    if response is None:
        return offset
    if _is_page(response):
        with response:
            page, page_url = _read_page(response), response.geturl()
        target = confirmation_url(page, page_url)
        if target is None:
            raise DownloadError(f"{link}: Google Drive sent a web page ({page_title(page)!r}) instead of the file: "
                                "the link may not be shared publicly, or the file's download quota is used up for "
                                "today; try again later, or download it in a browser. Nothing was saved")
        response = _open(target, offset, timeout)
        if response is None:
            return offset
        if _is_page(response):
            with response:
                page = _read_page(response)
            raise DownloadError(f"{link}: Google Drive's download button led to another web page "
                                f"({page_title(page)!r}), not the file; nothing was saved")
        url = target
    return _write(response, url, part, offset)


def download(url: str, dest: str | Path, *, size: int | None = None, sha256: str | None = None,
             timeout: float = 30.0) -> Download:
    """Fetch `url` to `dest` (resuming `<dest>.part`), check `size` and `sha256` when known,
    rename into place and record the hash beside it."""
    dest = Path(dest)
    if dest.is_file():
        raise FileExistsError(f"{dest} exists already; remove it to download again")
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    fetch = _fetch_google_drive if is_google_drive(url) else _fetch_http
    try:
        resumed_from = fetch(url, part, timeout)
    except urllib.error.URLError as err:  # no route, no DNS: offline
        host = urllib.parse.urlparse(url).hostname
        raise DownloadError(f"cannot reach {host} ({err.reason}); this machine looks offline. Download the file "
                            f"by hand and save it as {dest}") from err
    got = part.stat().st_size
    with open(part, "rb") as handle:
        head = handle.read(8)
    if not head.startswith(CHECKPOINT_MAGIC):
        part.unlink()
        raise DownloadError(f"{url}: what arrived ({got} bytes, starting {head[:8]!r}) is not a PyTorch checkpoint "
                            "(a zip archive or a pickle); it was removed")
    if size is not None and got != size:
        if got > size:
            part.unlink()
        raise DownloadError(f"{url}: got {got} bytes, expected {size}"
                            + ("; the partial file was removed" if got > size else "; run again to resume"))
    digest = file_sha256(part)
    if sha256 is not None and digest != sha256.lower():
        part.unlink()
        raise DownloadError(f"{url}: sha256 {digest} differs from the expected {sha256.lower()}; "
                            "the file was removed (a changed or damaged download)")
    os.replace(part, dest)
    dest.with_name(dest.name + SHA256_SUFFIX).write_text(f"{digest}  {dest.name}\n")
    return Download(dest, got, digest, resumed_from)


def verify(path: str | Path) -> str:
    """'ok', 'changed' (hash differs from the recorded one) or 'no hash recorded'."""
    path = Path(path)
    sidecar = path.with_name(path.name + SHA256_SUFFIX)
    if not sidecar.is_file():
        return "no hash recorded"
    expected = sidecar.read_text().split()[0].lower()
    return "ok" if file_sha256(path) == expected else "changed"
