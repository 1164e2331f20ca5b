"""A job's log read in chunks (the dashboard's live tail, ``GET
/api/jobs/{id}/log``): every chunk decodes alone, and the chunks add up to
the file."""

from __future__ import annotations

import pytest

from xqute.web.queries import read_log

TEXT = "é漢😀x" * 50  # 2-, 3- and 4-byte characters, and ASCII


def job(path, state="running"):
    return {"id": 1, "state": state, "stdout": str(path)}


@pytest.mark.parametrize("max_bytes", [4, 5, 7, 64, 1 << 16])
def test_chunks_hold_whole_characters_and_add_up(tmp_path, max_bytes):
    path = tmp_path / "job.stdout"
    path.write_bytes(TEXT.encode())
    got, offset = [], 0
    while True:
        chunk = read_log(job(path), "stdout", offset=offset, max_bytes=max_bytes)
        if not chunk["data"]:
            break
        assert "\ufffd" not in chunk["data"]
        got.append(chunk["data"])
        offset = chunk["next_offset"]
    assert "".join(got) == TEXT and offset == path.stat().st_size


def test_a_tail_starts_at_a_character(tmp_path):
    path = tmp_path / "job.stdout"
    path.write_bytes(TEXT.encode())
    for tail in range(1, 12):
        chunk = read_log(job(path), "stdout", tail=tail)
        assert "\ufffd" not in chunk["data"]
        assert TEXT.endswith(chunk["data"])
        assert chunk["next_offset"] == chunk["size"]


def test_a_character_half_written_waits_for_the_rest(tmp_path):
    path = tmp_path / "job.stdout"
    path.write_bytes("ab€".encode()[:-1])  # the job wrote 2 of its 3 bytes
    chunk = read_log(job(path), "stdout", offset=0)
    assert chunk["data"] == "ab" and chunk["next_offset"] == 2
    chunk = read_log(job(path), "stdout", offset=2)  # nothing whole yet
    assert chunk["data"] == "" and chunk["next_offset"] == 2 < chunk["size"]
    with path.open("ab") as fh:
        fh.write("€".encode()[-1:])
    assert read_log(job(path), "stdout", offset=2)["data"] == "€"
    # a job that ended with a broken character: shown as it is
    path.write_bytes(b"ab\xe2\x82")
    assert read_log(job(path, "failed"), "stdout")["data"] == "ab\ufffd"


def test_a_chunk_too_small_for_a_character_still_moves_on(tmp_path):
    """max_bytes below a character's length: the bytes as they are (a client
    that follows next_offset never stalls)."""
    path = tmp_path / "job.stdout"
    path.write_bytes("😀!".encode())
    chunk = read_log(job(path), "stdout", offset=0, max_bytes=2)
    assert chunk["next_offset"] == 2
