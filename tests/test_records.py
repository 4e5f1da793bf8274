"""Reading recordings: CSV under any header, WFDB records, and every way a file can be wrong."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import sys
import tempfile
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.analysis import records
from monitor.analysis.records import RecordError, Recording, open_recording, read_recording

DATA = Path(__file__).parent / "data"
WFDB = DATA / "wfdb"
RECORDS = sorted(p.name for p in DATA.iterdir() if (p / "abp.csv.gz").is_file())
MIXED_FS = 124.945


@pytest.fixture(autouse=True, params=["default blocks", "tiny blocks"])
def block_size(request, monkeypatch):
    """Every test twice: records read in the usual blocks, and in blocks of a few bytes and
    samples, so headers, CRLFs, gaps and errors fall across block boundaries."""
    if request.param == "tiny blocks":
        monkeypatch.setattr(records, "CHUNK_BYTES", 509)
        monkeypatch.setattr(records, "CHUNK_SAMPLES", 97)
        monkeypatch.setattr(records, "WFDB_CHUNK_SAMPLES", 333)
    return request.param


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def csv_rows(times, values, header: str = "time_s,abp_mmHg\n") -> str:
    return header + "".join(f"{t},{v}\n" for t, v in zip(times, values, strict=True))


def mixed_csv_lines() -> list[str]:
    with gzip.open(DATA / "wfdbpy_mixedsignals" / "abp.csv.gz", "rt") as f:
        return f.read().splitlines(keepends=True)


# --- the CSV fixtures ---------------------------------------------------------


def test_there_is_a_csv_fixture_for_each_of_the_nine_records():
    assert len(RECORDS) == 9


@pytest.mark.parametrize("name", RECORDS)
def test_csv_fixture_matches_its_meta(name):
    meta = json.loads((DATA / name / "meta.json").read_text())
    rec = read_recording(DATA / name / "abp.csv.gz")
    assert len(rec.samples) == meta["n_samples"]
    assert rec.fs == pytest.approx(meta["fs"], rel=1e-6)
    assert np.isnan(rec.samples).sum() == meta["n_nan"]
    assert np.nanmean(rec.samples) == pytest.approx(meta["overall_mean"], abs=1e-3)
    assert rec.channel == "abp_mmHg"
    assert rec.source == str(DATA / name / "abp.csv.gz")


@pytest.mark.parametrize("name", RECORDS)
def test_wabp_onsets_are_increasing_sample_indices_inside_the_csv(name):
    onsets = np.loadtxt(DATA / name / "wabp_onsets.txt", dtype=np.int64, ndmin=1)
    meta = json.loads((DATA / name / "meta.json").read_text())
    assert len(onsets) == meta["n_onsets"]
    assert np.all(np.diff(onsets) > 0)
    assert 0 <= onsets[0] and onsets[-1] < meta["n_samples"]


def test_recording_samples_are_read_only():
    rec = read_recording(DATA / "wfdbsw_xform_mimicdb237" / "abp.csv.gz")
    assert isinstance(rec, Recording)
    assert rec.samples.dtype == np.float64
    with pytest.raises(ValueError):
        rec.samples[0] = 0.0


# --- CSV: rate and missing rows -------------------------------------------------


def test_csv_time_rounded_to_tenth_of_milliseconds_still_gives_the_true_rate():
    # 0.0080 s steps, yet the record is 124.945 Hz, not 125 Hz.
    rec = read_recording(DATA / "wfdbpy_mixedsignals" / "abp.csv.gz")
    assert rec.fs == pytest.approx(MIXED_FS, abs=1e-4)


def test_csv_time_rounded_to_milliseconds_still_gives_the_true_rate(tmp_path):
    n = 5000
    times = [f"{i / MIXED_FS:.3f}" for i in range(n)]
    rec = read_recording(write(tmp_path / "r.csv", csv_rows(times, [80.0] * n)))
    # within the rounding of the two end stamps (1 ms in 40 s); the median
    # step, 0.008 s, would say 125 Hz
    assert rec.fs == pytest.approx(MIXED_FS, rel=0.001 / 40)
    assert len(rec.samples) == n
    assert not np.isnan(rec.samples).any()


def test_missing_rows_are_nan_at_their_place_and_the_rate_stays_true(tmp_path):
    # The median step (0.0080 s, i.e. 125 Hz) would put rows after the gaps
    # on indices drifting by a sample every ~18 s; the whole array must match.
    lines = mixed_csv_lines()
    dropped = {*range(5000, 5100), *range(20000, 20003), 27000}  # sample indices
    kept = [line for i, line in enumerate(lines) if i - 1 not in dropped]  # 1 header
    rec = read_recording(write(tmp_path / "gaps.csv", "".join(kept)))
    whole = read_recording(DATA / "wfdbpy_mixedsignals" / "abp.csv.gz").samples.copy()
    whole[sorted(dropped)] = np.nan
    assert rec.fs == pytest.approx(MIXED_FS, abs=1e-3)
    np.testing.assert_array_equal(rec.samples, whole)


@settings(max_examples=60, deadline=None)
@given(
    rate=st.floats(50.0, 1000.0),
    runs=st.lists(st.tuples(st.integers(10, 300), st.integers(1, 20)), min_size=1, max_size=6),
)
def test_rows_dropped_anywhere_come_back_as_nan_at_their_place(rate, runs):
    # runs of kept rows, each followed by a hole, times rounded to 0.1 ms
    kept: list[int] = []
    start = 0
    for length, hole in runs:
        kept.extend(range(start, start + length))
        start += length + hole
    n = kept[-1] + 1
    values = np.arange(n, dtype=np.float64)
    text = csv_rows([f"{i / rate:.4f}" for i in kept], values[kept])
    with tempfile.TemporaryDirectory() as folder:
        rec = read_recording(write(Path(folder) / "r.csv", text))
    expected = np.full(n, np.nan)
    expected[kept] = values[kept]
    np.testing.assert_array_equal(rec.samples, expected)
    assert rec.fs == pytest.approx(rate, abs=2e-4 / ((n - 1) / rate) * rate)


def test_missing_rows_with_a_given_fs_are_still_placed_by_the_time_column(tmp_path):
    times = [0.000, 0.008, 0.016, 0.040, 0.048]  # two rows missing after 0.016
    rec = read_recording(write(tmp_path / "r.csv", csv_rows(times, [1, 2, 3, 6, 7])), fs=125.0)
    np.testing.assert_array_equal(rec.samples, [1, 2, 3, np.nan, np.nan, 6, 7])
    assert rec.fs == 125.0


def test_fs_overrides_a_time_column_in_milliseconds(tmp_path):
    times = [0, 8, 16, 24, 32]
    rec = read_recording(write(tmp_path / "ms.csv", csv_rows(times, [1, 2, 3, 4, 5])), fs=125.0)
    assert rec.fs == 125.0
    np.testing.assert_array_equal(rec.samples, [1, 2, 3, 4, 5])


def test_irregular_but_gapless_timing_keeps_every_row(tmp_path):
    times = [0.0, 0.007, 0.017, 0.024, 0.031, 0.041]
    rec = read_recording(write(tmp_path / "r.csv", csv_rows(times, range(6))))
    assert len(rec.samples) == 6
    assert rec.fs == pytest.approx(5 / 0.041)


@pytest.mark.parametrize("fs", [0.0, -125.0, float("nan"), float("inf")])
def test_a_nonsense_fs_argument_is_a_programming_error(tmp_path, fs):
    with pytest.raises(ValueError, match="fs"):
        read_recording(write(tmp_path / "r.csv", csv_rows([0, 1], [1, 2])), fs=fs)


# --- CSV: headers and tokens ------------------------------------------------------


def test_a_header_of_several_lines_is_skipped_and_names_the_channel(tmp_path):
    text = (
        "Exported by Monitor X \u00b0\n"
        "Patient;anonymous\n"
        "\n"
        "Time (s), ART (mmHg) \n"
        "0.000,80\n0.008,81\n0.016,82\n"
    )
    rec = read_recording(write(tmp_path / "r.csv", text))
    np.testing.assert_array_equal(rec.samples, [80, 81, 82])
    assert rec.channel == "ART (mmHg)"


def test_a_latin1_header_is_read(tmp_path):
    path = tmp_path / "r.csv"
    path.write_bytes("Zeit,Druck \u00b0 mmHg\n0,80\n0.008,81\n".encode("latin-1"))
    assert read_recording(path).channel == "Druck \u00b0 mmHg"


def test_a_csv_without_header_starts_at_the_first_line(tmp_path):
    rec = read_recording(write(tmp_path / "r.csv", "0,80\n0.008,81\n"))
    np.testing.assert_array_equal(rec.samples, [80, 81])
    assert rec.channel == "column 2"
    assert rec.fs == pytest.approx(125.0)


def test_nan_tokens_and_empty_fields_read_as_nan(tmp_path):
    text = csv_rows([0, 0.008, 0.016, 0.024, 0.032, 0.040], ["nan", "NaN", "", " ", "90", "NAN"])
    rec = read_recording(write(tmp_path / "r.csv", text))
    assert np.isnan(rec.samples).tolist() == [True, True, True, True, False, True]


def test_an_empty_field_before_further_columns_is_nan(tmp_path):
    rec = read_recording(write(tmp_path / "r.csv", "t,p,q\n0,,7\n0.008,81,\n"))
    assert np.isnan(rec.samples[0]) and rec.samples[1] == 81


def test_extra_columns_crlf_bom_and_trailing_blank_lines_are_harmless(tmp_path):
    path = tmp_path / "r.csv"
    path.write_bytes(b"\xef\xbb\xbftime,abp,hr\r\n0,80,60\r\n0.008,81,60\r\n\r\n  \r\n")
    rec = read_recording(path)
    np.testing.assert_array_equal(rec.samples, [80, 81])
    assert rec.channel == "abp"


def test_a_gzipped_csv_reads_like_the_plain_one(tmp_path):
    text = csv_rows([0, 0.008, 0.016], [80, 81, 82])
    plain = write(tmp_path / "r.csv", text)
    zipped = tmp_path / "r.csv.gz"
    zipped.write_bytes(gzip.compress(text.encode()))
    np.testing.assert_array_equal(read_recording(zipped).samples, read_recording(plain).samples)


def test_a_csv_channel_argument_must_match_the_pressure_column(tmp_path):
    path = write(tmp_path / "r.csv", csv_rows([0, 0.008], [80, 81]))
    assert read_recording(path, channel="ABP_MMHG").channel == "abp_mmHg"
    with pytest.raises(RecordError, match="'abp_mmHg', not 'CVP'"):
        read_recording(path, channel="CVP")


# --- CSV: errors name the file, the line and the problem -----------------------------


def expect_error(path: Path, *fragments: str) -> None:
    with pytest.raises(RecordError) as caught:
        read_recording(path)
    message = str(caught.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message


def test_time_going_backwards_names_the_line(tmp_path):
    text = csv_rows([0, 0.008, 0.004, 0.012], [1, 2, 3, 4])
    expect_error(write(tmp_path / "r.csv", text), "line 4", "does not increase")


def test_a_repeated_time_is_not_increasing(tmp_path):
    text = csv_rows([0, 0.008, 0.008], [1, 2, 3])
    expect_error(write(tmp_path / "r.csv", text), "line 4", "does not increase")


def test_line_numbers_count_blank_lines_and_headers(tmp_path):
    text = "# a\ntime,abp\n0,1\n\n0.008,2\n\n0.004,3\n"
    expect_error(write(tmp_path / "r.csv", text), "line 7", "does not increase")


def test_a_non_numeric_pressure_names_the_line(tmp_path):
    text = csv_rows([0, 0.008, 0.016], [1, "--", 3])
    expect_error(write(tmp_path / "r.csv", text), "line 3", "pressure '--' is not a number")


def test_a_header_repeated_inside_the_data_names_the_line(tmp_path):
    text = csv_rows([0, 0.008], [1, 2]) + "time_s,abp_mmHg\n0.016,3\n"
    expect_error(write(tmp_path / "r.csv", text), "line 4", "time 'time_s' is not a number")


def test_a_row_with_one_column_names_the_line(tmp_path):
    expect_error(write(tmp_path / "r.csv", "t,p\n0,1\n0.008\n"), "line 3", "one column")


def test_a_semicolon_separated_file_has_no_data_rows(tmp_path):
    expect_error(write(tmp_path / "r.csv", "t;p\n0;80\n"), "no data rows", "number and a comma")


def test_an_unparseable_number_still_names_the_file(tmp_path):
    # Python's float() takes "1_0" but numpy does not: the message still helps.
    expect_error(write(tmp_path / "r.csv", "t,p\n0,1_0\n0.008,2\n"), "1_0")


def test_a_missing_time_names_the_line(tmp_path):
    expect_error(write(tmp_path / "r.csv", "t,p\n0,1\n,2\n"), "line 3", "time '' is not a number")


def test_a_nan_time_names_the_line(tmp_path):
    expect_error(write(tmp_path / "r.csv", "t,p\n0,1\nnan,2\n0.016,3\n"), "line 3", "time is nan")


def test_an_infinite_pressure_names_the_line(tmp_path):
    expect_error(write(tmp_path / "r.csv", "t,p\n0,1\n0.008,inf\n"), "line 3", "infinite")


def test_a_time_stamp_jumping_by_days_is_not_filled_with_nan(tmp_path):
    text = csv_rows([0, 0.008, 0.016, 1e9], [1, 2, 3, 4])
    expect_error(write(tmp_path / "r.csv", text), "line 5", "corrupt time stamp")


def test_an_empty_file_is_refused(tmp_path):
    expect_error(write(tmp_path / "r.csv", ""), "empty file")


def test_a_header_without_data_is_refused(tmp_path):
    expect_error(
        write(tmp_path / "r.csv", "time_s,abp_mmHg\n\n"),
        "no data rows",
        "after 2 header line",
    )


def test_a_single_sample_is_refused(tmp_path):
    expect_error(write(tmp_path / "r.csv", "time_s,abp_mmHg\n0,80\n"), "only 1 sample")


# --- files that are not there or not text ---------------------------------------------


def test_a_missing_file_is_refused(tmp_path):
    expect_error(tmp_path / "nope.csv", "No such file")


def test_a_directory_is_refused(tmp_path):
    expect_error(tmp_path, "directory")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads anything")
def test_an_unreadable_file_is_refused(tmp_path):
    path = write(tmp_path / "r.csv", "0,1\n0.008,2\n")
    path.chmod(0)
    expect_error(path, "Permission denied")


def test_a_file_the_os_refuses_is_refused_with_its_reason(tmp_path, monkeypatch):
    # the chmod test above is skipped when tests run as root, as in containers
    def refuse(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(self))

    path = write(tmp_path / "r.csv", "0,1\n0.008,2\n")
    monkeypatch.setattr(Path, "open", refuse)
    expect_error(path, "cannot read", "Permission denied")


def test_binary_junk_is_refused(tmp_path):
    path = tmp_path / "r.csv"
    path.write_bytes(bytes(range(256)) * 4)
    expect_error(path, "binary data")


def test_a_truncated_gzip_is_refused(tmp_path):
    whole = (DATA / "wfdbsw_xform_mimicdb237" / "abp.csv.gz").read_bytes()
    path = tmp_path / "r.csv.gz"
    path.write_bytes(whole[: len(whole) // 2])
    expect_error(path, "damaged gzip")


def test_a_gzip_with_a_damaged_body_is_refused(tmp_path):
    whole = bytearray((DATA / "wfdbsw_xform_mimicdb237" / "abp.csv.gz").read_bytes())
    whole[len(whole) // 2] ^= 0xFF
    path = tmp_path / "r.csv.gz"
    path.write_bytes(bytes(whole))
    expect_error(path, "damaged gzip")


# --- WFDB ---------------------------------------------------------------------------


@pytest.fixture
def wfdb():
    return pytest.importorskip("wfdb")


def test_wfdb_picks_the_abp_channel_at_its_own_rate(wfdb):
    # ABP is stored 2 samples per frame at 62.4725 frames/s.
    rec = read_recording(WFDB / "mixedsignals.hea")
    assert rec.channel == "ABP"
    assert rec.fs == pytest.approx(MIXED_FS)
    assert len(rec.samples) == 28800
    assert rec.source == f"{WFDB / 'mixedsignals.hea'}#ABP"


def test_wfdb_record_name_without_extension_reads_the_same(wfdb):
    a = read_recording(WFDB / "3975656_0012")
    b = read_recording(str(WFDB / "3975656_0012.hea"))
    np.testing.assert_array_equal(a.samples, b.samples)
    assert (a.channel, a.fs, len(a.samples)) == ("ABP", 125.0, 4425)


def test_wfdb_explicit_channel_is_case_insensitive(wfdb):
    assert read_recording(WFDB / "mixedsignals.hea", channel="abp").channel == "ABP"


def test_wfdb_missing_channel_lists_the_channels(wfdb):
    with pytest.raises(
        RecordError,
        match="no channel named 'CVP'; channels: II, III, V, ABP, Pleth, Resp",
    ):
        read_recording(WFDB / "mixedsignals.hea", channel="CVP")


def test_wfdb_channel_not_in_mmhg_is_refused(wfdb):
    with pytest.raises(RecordError, match="channel II is in 'mV', expected mmHg"):
        read_recording(WFDB / "3975656_0012.hea", channel="ii")


def test_wfdb_fs_argument_must_agree_with_the_header(wfdb):
    assert read_recording(WFDB / "3975656_0012.hea", fs=125.0).fs == 125.0
    with pytest.raises(RecordError, match="125 Hz, not the 100 Hz"):
        read_recording(WFDB / "3975656_0012.hea", fs=100.0)


@pytest.mark.parametrize(
    ("header", "csv"),
    [
        ("mixedsignals.hea", "wfdbpy_mixedsignals"),
        ("3975656_0012.hea", "mimic2_s00001_3975656_0012"),
    ],
)
def test_wfdb_and_csv_of_the_same_record_agree(wfdb, header, csv):
    from_wfdb = read_recording(WFDB / header)
    from_csv = read_recording(DATA / csv / "abp.csv.gz")
    assert from_wfdb.fs == pytest.approx(from_csv.fs, rel=1e-6)
    np.testing.assert_array_equal(np.isnan(from_wfdb.samples), np.isnan(from_csv.samples))
    # the CSV keeps 3 decimals
    np.testing.assert_allclose(from_wfdb.samples, from_csv.samples, rtol=0, atol=0.0005 + 1e-9)


def write_wfdb(wfdb, folder: Path, names: list[str], units: list[str]) -> Path:
    signal = np.tile(np.linspace(60.0, 120.0, 50), (len(names), 1)).T
    wfdb.wrsamp(
        "rec",
        fs=125,
        units=units,
        sig_name=names,
        p_signal=signal,
        fmt=["16"] * len(names),
        write_dir=str(folder),
    )
    return folder / "rec.hea"


def test_wfdb_without_an_arterial_channel_lists_the_channels(wfdb, tmp_path):
    path = write_wfdb(wfdb, tmp_path, ["II", "CVP"], ["mV", "mmHg"])
    with pytest.raises(RecordError, match=r"no arterial pressure channel .*channels: II, CVP"):
        read_recording(path)
    assert read_recording(path, channel="CVP").channel == "CVP"


def test_wfdb_art1_is_picked_but_an_abpmean_trend_is_not(wfdb, tmp_path):
    path = write_wfdb(wfdb, tmp_path, ["ABPMean", "ART1"], ["mmHg", "mmHg"])
    rec = read_recording(path)
    assert rec.channel == "ART1"
    np.testing.assert_allclose(rec.samples, np.linspace(60.0, 120.0, 50), atol=0.01)


def test_wfdb_header_without_its_signal_file_is_refused(wfdb, tmp_path):
    shutil.copy(WFDB / "3975656_0012.hea", tmp_path)
    with pytest.raises(RecordError, match="cannot read the signal"):
        read_recording(tmp_path / "3975656_0012.hea")


def test_a_garbage_wfdb_header_is_refused(wfdb, tmp_path):
    with pytest.raises(RecordError, match="not a readable WFDB header"):
        read_recording(write(tmp_path / "x.hea", "hello\n"))


def test_a_multi_segment_header_asks_for_a_segment(wfdb, tmp_path):
    text = "multi/4 1 125 30\nlayout 0\nseg1 10\n~ 10\nseg2 10\n"
    path = write(tmp_path / "multi.hea", text)
    with pytest.raises(
        RecordError,
        match=r"multi-segment record; open one of its segments \(seg1, seg2\)",
    ):
        read_recording(path)


def test_a_multi_segment_layout_header_is_refused(wfdb, tmp_path):
    path = write(tmp_path / "lay.hea", "lay 1 125 0\n~ 0 1/mmHg 9 0 -256 0 0 ABP\n")
    with pytest.raises(RecordError, match="0 samples"):
        read_recording(path)


def test_a_wfdb_header_without_a_length_reads_the_whole_signal_file(wfdb, tmp_path):
    shutil.copy(WFDB / "3975656_0012.dat", tmp_path)
    lines = (WFDB / "3975656_0012.hea").read_text().splitlines(keepends=True)
    write(tmp_path / "3975656_0012.hea", "3975656_0012 3 125\n" + "".join(lines[1:]))
    assert len(read_recording(tmp_path / "3975656_0012").samples) == 4425


def test_a_missing_wfdb_header_is_refused(tmp_path):
    expect_error(tmp_path / "absent.hea", "No such file")


def test_reading_wfdb_without_the_package_asks_for_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "wfdb", None)  # makes `import wfdb` fail
    with pytest.raises(
        RecordError, match=r"needs the wfdb extra \(pip install 'monitor\[wfdb\]'\)"
    ):
        read_recording(WFDB / "mixedsignals.hea")


# --- streaming: bounded memory, the same answers ------------------------------------------


def test_a_header_and_crlf_line_ends_split_across_blocks_read_the_same(tmp_path, monkeypatch):
    text = "# monitor export\r\n# bed 4\r\ntime,abp\r\n" + "".join(
        f"{i * 0.008:.3f},{80 + i}\r\n" for i in range(40)
    )
    path = tmp_path / "r.csv"
    path.write_bytes(text.encode())
    whole = read_recording(path)
    monkeypatch.setattr(records, "CHUNK_BYTES", 5)
    split = read_recording(path)
    assert split.channel == whole.channel == "abp"
    np.testing.assert_array_equal(split.samples, whole.samples)
    np.testing.assert_array_equal(split.samples, 80 + np.arange(40))


def test_a_bad_row_late_in_the_file_is_reported_before_an_earlier_bad_time(tmp_path, monkeypatch):
    # as a reader of the whole file: rows are parsed before times are checked
    monkeypatch.setattr(records, "CHUNK_BYTES", 64)
    rows = csv_rows([0, "nan"] + [0.008 * i for i in range(2, 60)], range(60))
    path = write(tmp_path / "r.csv", rows + "x,5\n")
    expect_error(path, "line 62", "time 'x' is not a number")


def test_a_nul_byte_late_in_the_file_is_binary_data(tmp_path, monkeypatch):
    monkeypatch.setattr(records, "CHUNK_BYTES", 64)
    path = tmp_path / "r.csv"
    path.write_bytes((csv_rows([0.008 * i for i in range(60)], range(60)) + "\0").encode())
    expect_error(path, "binary data")


def test_a_long_gap_streams_in_bounded_chunks(tmp_path, monkeypatch):
    times = [0.0, 0.008, 0.016, 0.024] + [100.0 + 0.008 * i for i in range(10)]
    path = write(tmp_path / "r.csv", csv_rows(times, range(14)))
    monkeypatch.setattr(records, "CHUNK_SAMPLES", 97)
    stream = open_recording(path)
    try:
        chunks = list(stream.chunks())
    finally:
        stream.close()
    assert max(len(c) for c in chunks) <= 97
    assert sum(len(c) for c in chunks) == stream.n_samples == 12_510
    np.testing.assert_array_equal(np.concatenate(chunks), read_recording(path).samples)


def test_streaming_a_record_holds_a_few_blocks_not_the_record(tmp_path, monkeypatch):
    n = 500_000
    path = tmp_path / "long.csv"
    with path.open("w") as out:
        out.write("time_s,abp_mmHg\n")
        np.savetxt(out, np.column_stack((np.arange(n) / 125.0, 80 + np.arange(n) % 50)),
                   fmt=("%.4f", "%.1f"), delimiter=",")  # fmt: skip
    monkeypatch.setattr(records, "CHUNK_BYTES", 64 << 10)
    monkeypatch.setattr(records, "CHUNK_SAMPLES", 8192)
    tracemalloc.start()
    try:
        stream = open_recording(path)
        total = sum(len(chunk) for chunk in stream.chunks())
        stream.close()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total == n
    assert peak < n * 8  # less than the samples alone would take (the text is 10 times more)
