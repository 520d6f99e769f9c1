"""`weights download` against real HTTP servers on 127.0.0.1: Range requests, a connection that
drops mid-file, wrong sizes and hashes, and a server that answers like Google Drive (the
virus-scan page first, then the file; or only a page). Nothing here reaches beyond loopback."""

from __future__ import annotations

import hashlib
import http.server
import threading

import pytest

from socialmae_rt.cli import main
from socialmae_rt.weights.download import DownloadError, download, verify

PAYLOAD = b"PK\x03\x04" + (bytes(range(256)) * 4096)[4:]  # 1 MiB that starts like torch.save's zip


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves PAYLOAD with Range support; `drop_after` bytes of the next response, then hangs up."""

    drop_after: list[int | None] = [None]
    ranges: list[str | None] = []

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        start = 0
        requested = self.headers.get("Range")
        type(self).ranges.append(requested)
        if requested:
            start = int(requested.split("=")[1].split("-")[0])
            if start >= len(PAYLOAD):
                self.send_response(416)
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(PAYLOAD) - 1}/{len(PAYLOAD)}")
        else:
            self.send_response(200)
        body = PAYLOAD[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        limit, type(self).drop_after[0] = type(self).drop_after[0], None
        self.wfile.write(body if limit is None else body[:limit])
        if limit is not None:
            self.wfile.flush()
            self.close_connection = True

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server():
    _Handler.drop_after[0] = None
    _Handler.ranges.clear()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/socialmae-ft-ndcme.pth"
    httpd.shutdown()
    httpd.server_close()


SHA = hashlib.sha256(PAYLOAD).hexdigest()


def test_full_file_is_checked_renamed_and_its_hash_recorded(server, tmp_path):
    done = download(server, tmp_path / "ft.pth", size=len(PAYLOAD), sha256=SHA)
    assert done.path.read_bytes() == PAYLOAD and done.resumed_from == 0
    assert (tmp_path / "ft.pth.sha256").read_text() == f"{SHA}  ft.pth\n"
    assert not (tmp_path / "ft.pth.part").exists()
    assert verify(done.path) == "ok"
    done.path.write_bytes(PAYLOAD[:-1] + b"x")
    assert verify(done.path) == "changed"


def test_an_interrupted_download_resumes_where_it_stopped(server, tmp_path):
    _Handler.drop_after[0] = 300_000
    with pytest.raises(DownloadError, match="interrupted after 300000 of 1048576 bytes; run the same command again"):
        download(server, tmp_path / "ft.pth", sha256=SHA)
    assert (tmp_path / "ft.pth.part").stat().st_size == 300_000 and not (tmp_path / "ft.pth").exists()
    done = download(server, tmp_path / "ft.pth", sha256=SHA)
    assert done.resumed_from == 300_000 and _Handler.ranges[-1] == "bytes=300000-"
    assert done.path.read_bytes() == PAYLOAD


def test_wrong_size_and_wrong_hash_leave_no_file(server, tmp_path):
    with pytest.raises(DownloadError, match=f"got {len(PAYLOAD)} bytes, expected 1000; the partial file was removed"):
        download(server, tmp_path / "a.pth", size=1000)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(DownloadError, match=f"sha256 {SHA} differs from the expected {'a' * 64}"):
        download(server, tmp_path / "b.pth", sha256="A" * 64)
    assert list(tmp_path.iterdir()) == []


def test_offline_is_one_line_saying_where_to_put_the_file(tmp_path, capsys):
    # Port 1 on loopback: refused at once, as an unreachable host is.
    code = main(["weights", "download", "socialmae-ft-ndcme", "--url", "http://127.0.0.1:1/x.pth",
                 "--dest", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "looks offline" in err and f"save it as {tmp_path / 'socialmae-ft-ndcme.pth'}" in err


def test_command_downloads_lists_and_hands_over_to_import(server, tmp_path, capsys):
    assert main(["weights", "download", "socialmae-ft-ndcme", "--url", server, "--dest", str(tmp_path),
                 "--sha256", SHA]) == 0
    out = capsys.readouterr().out
    assert f"sha256 {SHA}" in out and "next: socialmae-rt weights import" in out and "--task laughter" in out
    assert main(["weights", "list", "--dir", str(tmp_path)]) == 0
    listing = capsys.readouterr().out
    assert f"{tmp_path / 'socialmae-ft-ndcme.pth'} (present, ok; 1 MiB, sha256 {SHA})" in listing
    assert f"{tmp_path / 'socialmae-ft-cremad.pth'} (not downloaded)" in listing
    assert main(["weights", "download", "socialmae-ft-ndcme", "--url", server, "--dest", str(tmp_path)]) == 2
    assert "exists already" in capsys.readouterr().err


def test_a_released_name_downloads_through_drives_virus_scan_page(fake_drive, tmp_path, capsys):
    from socialmae_rt.weights.released import RELEASED

    item = RELEASED["socialmae-ft-cremad"]
    fake_drive.files[item.drive_id] = PAYLOAD
    assert main(["weights", "download", "socialmae-ft-cremad", "--dest", str(tmp_path)]) == 0
    saved = tmp_path / "socialmae-ft-cremad.pth"
    assert saved.read_bytes() == PAYLOAD and verify(saved) == "ok"
    assert [r.split("?")[0] for r in fake_drive.requests] == ["/uc", "/download"]  # the page, then its form
    assert f"id={item.drive_id}" in fake_drive.requests[0]
    out = capsys.readouterr().out
    assert f"sha256 {SHA}" in out and "--task emotion" in out
    assert main(["weights", "list", "--dir", str(tmp_path)]) == 0
    assert f"(present, ok; 1 MiB, sha256 {SHA})" in capsys.readouterr().out


def test_a_drive_that_sends_only_a_page_gets_one_line_and_leaves_nothing(fake_drive, tmp_path, capsys):
    fake_drive.only_pages[0] = True
    assert main(["weights", "download", "socialmae-ft-ndcme", "--dest", str(tmp_path)]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if "downloading" not in line]
    assert len(err) == 1 and "Google Drive sent a web page ('Google Drive - Quota exceeded') instead of the file" in err[0]
    assert list(tmp_path.iterdir()) == []


def test_a_page_that_arrives_as_the_file_is_never_saved_as_a_checkpoint(tmp_path):
    class Page(_Handler):
        def do_GET(self) -> None:  # noqa: N802 - an HTML body served as a binary file
            body = b"<html><body>Sign in to continue</body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        with pytest.raises(DownloadError, match="is not a PyTorch checkpoint .* it was removed"):
            download(f"http://127.0.0.1:{httpd.server_address[1]}/x.pth", tmp_path / "x.pth")
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert list(tmp_path.iterdir()) == []


def test_weights_get_downloads_all_four_and_leaves_a_ready_bundle(fake_drive, released_files, tmp_path, capsys):
    from socialmae_rt.weights.bundle import read_bundle
    from socialmae_rt.weights.released import RELEASED

    for item in RELEASED.values():
        fake_drive.files[item.drive_id] = released_files[item.task].read_bytes()
    folder = tmp_path / "weights"
    assert main(["weights", "get", "--dir", str(folder)]) == 0
    spec = read_bundle(folder / "bundle")
    assert sorted(e.task for e in spec.entries) == ["emotion", "laughter", "personality"] and spec.encoder
    assert "run it: socialmae-rt run --weights" in capsys.readouterr().out
    asked = len(fake_drive.requests)
    assert main(["weights", "get", "--dir", str(folder)]) == 0  # again: nothing fetched, nothing imported twice
    assert len(fake_drive.requests) == asked
    again = capsys.readouterr().out
    assert again.count("present (ok), kept") == 4 and again.count("present, kept (--force to import again)") == 4
