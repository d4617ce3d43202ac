"""The arrays that cross the trust line (a case's inputs, a function's returned values, a kit's
visible cases): written and read back exactly, and a hostile blob is refused with a
BadRecording, never a crash or a pickle."""
import json
import struct

import numpy as np
import pytest

from autograder.student import recording
from autograder.student.recording import BadRecording, pack_arrays, unpack_arrays


def _arrays():
    rng = np.random.default_rng(0)
    return {
        "f8": rng.standard_normal((3, 4)),
        "fortran": np.asfortranarray(rng.standard_normal((5, 2, 3))),
        "view": rng.standard_normal((6, 6))[::2, 1::3],   # not contiguous: written as a copy
        "f4 big-endian": rng.standard_normal(7).astype(">f4"),
        "scalar": np.array(2.5),
        "empty": np.zeros((0, 3)),
        "mask": rng.standard_normal(9) > 0,
        "int": np.arange(12, dtype=np.int16).reshape(3, 4),
        "uint": np.arange(5, dtype=np.uint64),
        "complex": np.array([1 + 2j, np.nan + 1j, np.inf]),
        "special": np.array([np.nan, -np.inf, np.inf, -0.0, 5e-324]),
    }


def test_arrays_come_back_exactly_with_their_dtype_shape_and_order():
    arrays = _arrays()
    back = unpack_arrays(pack_arrays(arrays), untrusted=True)
    assert list(back) == list(arrays)
    for name, a in arrays.items():
        b = back[name]
        assert b.dtype == a.dtype and b.shape == a.shape, name
        assert b.tobytes() == np.ascontiguousarray(a).tobytes(), name  # bit for bit, NaNs included
        assert b.flags.writeable and b.flags.owndata, name
    assert back["fortran"].flags.f_contiguous and not back["fortran"].flags.c_contiguous


def test_values_round_trip_through_the_two_files(tmp_path):
    value = ([np.eye(2), {"w": np.ones(3, dtype=np.float32)}], 3, 0.5, None, "text", True)
    recording.save(str(tmp_path / "0"), value, {"status": "ok"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["0.arrays", "0.json"]
    doc = recording.load(str(tmp_path / "0"))
    got = doc["value"]
    assert doc["status"] == "ok" and got[1:] == (3, 0.5, None, "text", True)
    np.testing.assert_array_equal(got[0][0], np.eye(2))
    assert got[0][1]["w"].dtype == np.float32


def test_only_arrays_of_numbers_are_written():
    with pytest.raises(BadRecording):
        pack_arrays({"o": np.array([object()], dtype=object)})
    with pytest.raises(BadRecording):
        pack_arrays({"s": np.zeros(2, dtype=[("a", "f8"), ("b", "i4")])})
    with pytest.raises(BadRecording):  # what unpacking would refuse is not written either
        pack_arrays({"deep": np.zeros((1,) * (recording.MAX_DIMS + 1))})


def _blob(table, payload=b"", magic=recording.ARRAYS_MAGIC):
    header = json.dumps(table).encode()
    return magic + struct.pack("<I", len(header)) + header + payload


@pytest.mark.parametrize("blob", [
    b"",
    b"PK\x03\x04 a zip, not this format",
    recording.ARRAYS_MAGIC + b"\x01",                                       # no table length
    recording.ARRAYS_MAGIC + struct.pack("<I", 1000) + b"[]",               # table cut short
    _blob("not a list"),
    _blob([["a", "<f8", [2], False, 0]]),                                    # five fields
    _blob([["a", "<f8", [2], False, 0, 16]], b"\0" * 8),                     # bytes cut short
    _blob([["a", "<f8", [3], False, 0, 16]], b"\0" * 32),                    # size != shape
    _blob([["a", "<f8", [-2], False, 0, 16]], b"\0" * 16),                   # negative dimension
    _blob([["a", "<f8", [2], False, -8, 16]], b"\0" * 16),                   # negative offset
    _blob([["a", "<f8", [2.0], False, 0, 16]], b"\0" * 16),                  # a float dimension
    _blob([["a", "<f8", [True, 2], False, 0, 16]], b"\0" * 16),              # a bool dimension
    _blob([["a", "<f8", [2], "no", 0, 16]], b"\0" * 16),                     # order not a bool
    _blob([["a", "|O", [2], False, 0, 16]], b"\0" * 16),                     # objects
    _blob([["a", "f8,f8", [1], False, 0, 16]], b"\0" * 16),                  # a structure
    _blob([["a", "(2,)f8", [1], False, 0, 16]], b"\0" * 16),                 # a sub-array
    _blob([["a", "<U4", [1], False, 0, 16]], b"\0" * 16),                    # text
    _blob([["a", "not a dtype", [1], False, 0, 8]], b"\0" * 8),
    _blob([["a", "<f8", [1] * 40, False, 0, 8]], b"\0" * 8),                 # too many dimensions
])
def test_a_malformed_blob_is_a_bad_recording(blob):
    with pytest.raises(BadRecording):
        unpack_arrays(blob, untrusted=True)


def test_untrusted_blobs_are_held_to_the_bounds(monkeypatch):
    monkeypatch.setattr(recording, "MAX_ARRAY_BYTES", 1 << 10)
    # The same 512 bytes named three times unpack to more than the bound.
    thrice = _blob([[f"a{k}", "<f8", [64], False, 0, 512] for k in range(3)], b"\0" * 512)
    with pytest.raises(BadRecording, match="too large"):
        unpack_arrays(thrice, untrusted=True)
    assert len(unpack_arrays(thrice)) == 3  # the grader's own blobs are not bounded so
    many = _blob([[f"a{k}", "<f8", [0], False, 0, 0] for k in range(recording.MAX_VALUES * 4 + 1)])
    with pytest.raises(BadRecording):
        unpack_arrays(many, untrusted=True)
