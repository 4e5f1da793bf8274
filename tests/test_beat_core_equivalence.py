"""The compiled core and the pure-Python reference give the same beats and events."""

from __future__ import annotations

import os

import numpy as np
import pytest

from devices.simulation import artifacts
from devices.simulation.abp_waveform import synthesize_abp
from monitor import core
from monitor.analysis.validation import resample_record, run_detector

from conftest import ALL_RECORDS, CompiledBeatDetector, ReferenceBeatDetector, reference_record


def assert_same_output(samples: np.ndarray, fs: float) -> None:
    compiled = run_detector(CompiledBeatDetector, samples, fs)
    reference = run_detector(ReferenceBeatDetector, samples, fs)
    for got, want in zip(compiled, reference, strict=True):
        assert got.dtype == want.dtype
        assert len(got) == len(want)
        for field in ("onset", "end", "systolic_index", "quality", "clean"):
            if field in got.dtype.names:
                np.testing.assert_array_equal(got[field], want[field])
        for field in got.dtype.names:
            if got.dtype[field].kind == "f":
                np.testing.assert_allclose(got[field], want[field], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", ALL_RECORDS)
def test_cores_agree_on_every_real_record(name):
    record = reference_record(name)
    assert_same_output(record.samples, record.fs)


@pytest.mark.parametrize("fs", [250.0, 1000.0])
def test_cores_agree_on_a_resampled_record(fs):
    record = resample_record(reference_record("mimic2_s00001_3975656_0015"), fs)
    assert_same_output(record.samples, record.fs)


@pytest.mark.parametrize("fs", [100.0, 333.0, 1000.0])
def test_cores_agree_on_synthetic_signal_with_every_artifact(fs):
    signal = synthesize_abp(120.0, fs, map_mmhg=60.0, pulse_pressure_mmhg=30.0, seed=3).samples
    signal = artifacts.fast_flush(signal, fs, 15.0).samples
    signal = artifacts.zeroing(signal, fs, 25.0, 8.0).samples
    signal = artifacts.damping(signal, fs, 40.0, 10.0).samples
    signal = artifacts.clipping(signal, fs, 55.0, 5.0, rail_mmhg=70.0).samples
    signal = artifacts.dropout(signal, fs, 65.0, 2.0).samples
    signal = artifacts.line_manipulation(signal, fs, 75.0, 5.0).samples
    signal = artifacts.disconnection(signal, fs, 90.0, 10.0).samples
    signal = artifacts.spikes(signal, fs, [105.0, 106.5]).samples
    assert_same_output(signal, fs)


def test_product_runs_the_compiled_core_unless_told_otherwise():
    if os.environ.get(core.PURE_PYTHON_SWITCH, "") not in ("", "0"):
        assert core.IMPLEMENTATION == "pure-python"
        with pytest.raises(core.CoreUnavailableError, match="tests only"):
            core.require_compiled()
    else:
        assert core.IMPLEMENTATION == "compiled"
        assert core.BeatDetector is CompiledBeatDetector
        core.require_compiled()
