"""Faces from an upstream detector: tracked lists and per-face images grouped into moments."""

from __future__ import annotations

import numpy as np

from socialmae_rt.faces.upstream import FaceIds, MomentAssembler, is_valid_face_name, own_face_name

MS = 1_000_000
WAIT = 500 * MS


def image(value: int, height: int = 96, width: int = 64) -> np.ndarray:
    return np.full((height, width, 3), value, np.uint8)


def sending(assembler: MomentAssembler, names: list[str], stamp_ns: int = 50 * MS, now_ns: int = 0) -> list:
    """A first moment in which `names` send their images (before the list): they send from now on."""
    moments = []
    for name in names:
        moments += assembler.image(name, stamp_ns, image(1), now_ns)
    return moments + assembler.tracked(stamp_ns, names, now_ns)


def test_valid_face_names_are_ros_name_tokens():
    assert all(is_valid_face_name(n) for n in ("abcde", "face3", "a_1", "Z"))
    assert not any(is_valid_face_name(n) for n in ("", "3abc", "a b", "a/b", "a-b", "_a", "ü"))
    assert own_face_name(3) == "face3" and own_face_name(None) == ""


def test_ids_are_stable_while_tracked_and_new_when_a_name_comes_back():
    ids = FaceIds()
    first = ids.id_of("abcde")
    assert ids.id_of("abcde") == first and ids.id_of("fghij") != first
    assert ids.name(first) == "abcde"
    assert ids.release("abcde") == first and not ids.tracks("abcde")
    assert ids.name(first) == "abcde"  # still named for a late event
    assert ids.id_of("abcde") != first  # back again: a new face to us
    assert ids.name(99) == "face99"  # never named upstream


def test_a_moment_goes_once_every_listed_face_has_its_image_in_any_order():
    assembler = MomentAssembler(FaceIds(), WAIT, crop_size=32)
    assert len(sending(assembler, ["aaaaa", "bbbbb"])) == 1
    assert assembler.image("bbbbb", 100 * MS, image(10), now_ns=0) == []
    assert assembler.tracked(100 * MS, ["aaaaa", "bbbbb"], now_ns=1) == []
    [moment] = assembler.image("aaaaa", 100 * MS, image(20), now_ns=2)
    assert moment.stamp_ns == 100 * MS and moment.gone == []
    assert [moment.names[c.face_id] for c in moment.crops] == ["aaaaa", "bbbbb"]
    assert all(c.bgr.shape == (32, 32, 3) and c.stamp_ns == 100 * MS for c in moment.crops)
    # A 96x64 image is made square with black borders left and right, not stretched.
    crop = moment.crops[0].bgr
    assert crop[:, 0].max() == 0 and crop[16, 16].tolist() == [20, 20, 20]
    assert sorted(moment.tracked) == sorted(moment.names)


def test_a_face_that_sends_images_holds_its_moment_until_the_wait_is_over():
    assembler = MomentAssembler(FaceIds(), WAIT)
    assert len(sending(assembler, ["aaaaa"], stamp_ns=100 * MS)) == 1
    assembler.tracked(200 * MS, ["aaaaa"], now_ns=10)  # this time its image is lost
    assert assembler.due(now_ns=WAIT) == []
    [moment] = assembler.due(now_ns=10 + WAIT)
    assert moment.crops == [] and len(moment.tracked) == 1  # still tracked, just no image this time
    assert assembler.counts.missing_images == 1 and assembler.missing == [("aaaaa", 200 * MS)]


def test_a_new_face_holds_nothing_up_and_one_whose_image_never_comes_is_counted_once():
    assembler = MomentAssembler(FaceIds(), WAIT)
    sending(assembler, ["aaaaa"], stamp_ns=100 * MS)
    # "ghost" is listed from now on, but its image topic never delivers.
    [moment] = assembler.tracked(200 * MS, ["aaaaa", "ghost"], now_ns=1) + assembler.image(
        "aaaaa", 200 * MS, image(5), now_ns=1)
    assert [moment.names[c.face_id] for c in moment.crops] == ["aaaaa"] and len(moment.tracked) == 2
    assert assembler.missing == []
    for step in range(2, 12):  # a second of frames: counted once the wait is over, and only once
        stamp = (100 + 100 * step) * MS
        assembler.tracked(stamp, ["aaaaa", "ghost"], now_ns=step * 100 * MS)
        assembler.image("aaaaa", stamp, image(5), now_ns=step * 100 * MS)
        assembler.due(now_ns=step * 100 * MS)
    assert assembler.counts.missing_images == 1 and assembler.missing == [("ghost", None)]


def test_a_newer_complete_moment_lets_the_older_ones_go_first_and_late_messages_are_dropped():
    assembler = MomentAssembler(FaceIds(), WAIT)
    sending(assembler, ["aaaaa"])
    assembler.tracked(100 * MS, ["aaaaa"], now_ns=0)  # its image is slow
    assembler.tracked(200 * MS, ["aaaaa"], now_ns=1)
    moments = assembler.image("aaaaa", 200 * MS, image(1), now_ns=2)
    assert [m.stamp_ns for m in moments] == [100 * MS, 200 * MS]
    assert assembler.image("aaaaa", 100 * MS, image(1), now_ns=3) == []  # came after its moment went
    assert assembler.counts.late == 1 and assembler.counts.moments == 3


def test_a_face_no_longer_listed_is_gone_with_its_id():
    ids = FaceIds()
    assembler = MomentAssembler(ids, WAIT)
    [first] = sending(assembler, ["aaaaa", "bbbbb"])
    [second] = assembler.tracked(200 * MS, [], now_ns=1)
    assert sorted(second.gone) == sorted(first.tracked) and second.tracked == [] and second.crops == []
    assert not ids.tracks("aaaaa") and not ids.tracks("bbbbb")


def test_a_name_listed_twice_counts_once():
    assembler = MomentAssembler(FaceIds(), WAIT)
    assembler.image("aaaaa", 100 * MS, image(1), now_ns=0)
    [moment] = assembler.tracked(100 * MS, ["aaaaa", "aaaaa"], now_ns=0)
    assert len(moment.tracked) == 1 and len(moment.crops) == 1


def test_a_new_face_listed_before_its_first_image_sends_from_its_first_image_on():
    """The list comes first, the image a little later: that first moment goes without the new face
    (its image, late, is dropped), and from the next one on its moments wait for its images."""
    assembler = MomentAssembler(FaceIds(), WAIT)
    [first] = assembler.tracked(100 * MS, ["aaaaa"], now_ns=0)
    assert first.crops == [] and len(first.tracked) == 1
    assert assembler.image("aaaaa", 100 * MS, image(1), now_ns=1) == [] and assembler.counts.late == 1
    assert assembler.tracked(200 * MS, ["aaaaa"], now_ns=2) == []  # now it waits for the image
    [second] = assembler.image("aaaaa", 200 * MS, image(1), now_ns=3)
    assert len(second.crops) == 1 and assembler.counts.missing_images == 0


def test_when_the_detector_goes_quiet_every_face_it_tracked_is_gone():
    ids = FaceIds()
    assembler = MomentAssembler(ids, WAIT)
    [first] = sending(assembler, ["aaaaa", "bbbbb"])
    assembler.tracked(100 * MS, ["aaaaa", "bbbbb"], now_ns=1)  # pending, never completed
    [quiet] = assembler.forget_all()
    assert sorted(quiet.gone) == sorted(first.tracked) and quiet.tracked == [] and quiet.stamp_ns > first.stamp_ns
    assert not ids.tracks("aaaaa") and assembler.forget_all() == []  # said once
    assert assembler.due(now_ns=10 * WAIT) == []  # the pending moment went with them
