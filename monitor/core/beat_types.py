"""What the beat core emits, and the settings it runs on.

Both implementations of the core (the compiled one in ``ext/`` and the
pure-Python reference in :mod:`monitor.core.beat_detector_py`) share this module,
so a beat or an event means the same thing whichever of them produced it.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

#: One row per completed beat. Indices count samples from the stream's first
#: sample; a beat spans ``[onset, end)`` and ``end`` is the next beat's onset.
#: ``known_at`` is how many samples the core had consumed when it emitted the
#: row: the moment the beat became knowable, the same however the stream was
#: chunked, so clinical time built on it is the same live and in replay.
BEAT_DTYPE = np.dtype(
    [
        ("onset", np.int64),
        ("end", np.int64),
        ("systolic_index", np.int64),
        ("sbp", np.float64),
        ("dbp", np.float64),
        ("map", np.float64),
        ("pulse_pressure", np.float64),
        ("period_s", np.float64),
        ("pulse_rate", np.float64),
        ("quality", np.uint16),
        ("clean", np.bool_),
        ("known_at", np.int64),
    ]
)

#: One row per change of a no-beat condition: ``begin`` is true when the
#: condition starts at sample ``index`` and false when it ends there.
#: ``level_mmhg`` is the mean pressure that classified it (NaN for gaps);
#: ``known_at`` is as for beats (the start of a stretch is found later than
#: ``index``: a pulse is only missed once it has been missing a while).
EVENT_DTYPE = np.dtype(
    [
        ("kind", np.uint8),
        ("begin", np.bool_),
        ("index", np.int64),
        ("level_mmhg", np.float64),
        ("known_at", np.int64),
    ]
)


class Quality(enum.IntFlag):
    """Why a beat is not trustworthy; a clean beat has none of these bits.

    The rules follow Sun, Reisner and Mark (Computers in Cardiology 2006,
    abpSQI) and the artifact signatures of Li, Mark and Clifford (BioMed Eng
    OnLine 2009), widened so that a shocked patient's low pressure and small
    pulse pressure stay clean: level alone never makes a beat an artifact.
    """

    GAP = 1 << 0  # missing (NaN/inf) samples inside the beat
    FLUSH = 1 << 1  # fast-flush / square-wave test: flat top at high pressure
    ZEROING = 1 << 2  # trace near 0 mmHg: zeroing, stopcock open to air
    DAMPED = 1 << 3  # pulse pressure collapsed while the mean held
    NO_PULSATILITY = 1 << 4  # pulse pressure too small to be a pulse: disconnection
    CLIPPED = 1 << 5  # pinned at an ADC rail or beyond the transducer's range
    IMPLAUSIBLE = 1 << 6  # pressure or rate outside what a circulation produces
    ABRUPT_CHANGE = 1 << 7  # jump from the previous beat no physiology makes
    NOISY = 1 << 8  # steep negative slopes: line manipulation, blood draw, noise
    ISOLATED = 1 << 9  # no trustworthy beat just before it: first of a run, or after an artifact
    TRANSDUCER_FAULT = 1 << 10  # the front end reported a fault (set by the stream, not the core)


#: Flag names as written in CSV output, lowest bit first.
QUALITY_NAMES: tuple[str, ...] = tuple(name.lower() for name in Quality.__members__)


def quality_names(mask: int) -> str:
    """The names of the flags set in ``mask`` joined by ``|`` ('' when clean)."""
    return "|".join(name.lower() for name, flag in Quality.__members__.items() if mask & flag)


class EventKind(enum.IntEnum):
    """Stretches in which the core finds no pulse, told apart by their level."""

    GAP = 1  # samples missing (NaN/inf)
    FLAT_NEAR_ZERO = 2  # no pulse near 0 mmHg: zeroing, stopcock open, disconnection
    NO_PULSE = 3  # no pulse at a physiological mean pressure: check the patient
    NO_PULSE_HIGH = 4  # no pulse above physiological pressure: flush, over-range


class DetectorOutput(NamedTuple):
    """What one ``push()`` or ``finish()`` produced."""

    beats: np.ndarray  # BEAT_DTYPE
    events: np.ndarray  # EVENT_DTYPE


MIN_SAMPLING_RATE_HZ = 100.0
MAX_SAMPLING_RATE_HZ = 1000.0


@dataclass(frozen=True)
class DetectorSettings:
    """Every constant of the beat core, in seconds and mmHg, never in samples.

    Detection follows Zong, Heldt, Moody and Mark (Computers in Cardiology
    2003, "wabp"), run on a block-averaged copy of the signal at close to
    the 125 Hz it was designed for; beat values come from every raw sample.
    """

    # Detection (Zong 2003)
    detection_rate_hz: float = 125.0  # decimate by floor(fs / this), at least 1
    lowpass_window_s: float = 0.040  # two cascaded moving sums (5 samples at 125 Hz)
    slope_window_s: float = 0.128  # slope-sum window (16 samples at 125 Hz)
    learning_s: float = 8.0  # initial threshold: median of per-second slope-sum maxima
    eye_closing_s: float = 0.25  # refractory period after a detection
    threshold_decay_after_s: float = 2.5  # lower the threshold after this long without a beat
    threshold_half_life_s: float = 1.0  # how fast it is lowered then
    min_threshold_mmhg: float = 1.5  # floor of the adaptive slope-sum threshold
    onset_rise_fraction: float = 0.01  # onset: slope sum rising < 1% of its peak per sample
    # The search lands this long after the foot of the upstroke (the filtered
    # slope needs a few samples to exceed 1% of its peak); calibrated on the
    # synthetic generator's known feet, and it matches wabp's onsets.
    onset_delay_s: float = 0.016

    # Beat formation and no-pulse stretches
    no_pulse_s: float = 5.0  # no pulsatile beat for this long opens a no-pulse stretch
    near_zero_mmhg: float = 10.0  # below this a trace is open to air, not a patient
    physiological_max_mmhg: float = 200.0  # a mean above this is a flush or over-range

    # Per-beat quality (Sun 2006, widened for shock)
    transducer_min_mmhg: float = -50.0  # transducer range (IEC 60601-2-34)
    transducer_max_mmhg: float = 300.0
    min_pulse_pressure_mmhg: float = 4.0
    max_sbp_mmhg: float = 300.0
    min_map_mmhg: float = 20.0  # below any pulsatile circulation, even a preterm neonate's
    max_map_mmhg: float = 200.0
    min_pulse_rate_bpm: float = 20.0
    max_pulse_rate_bpm: float = 220.0
    max_pressure_jump_mmhg: float = 20.0  # systolic, diastolic or onset pressure vs previous beat
    max_period_jump_s: float = 0.5
    noise_slope_mmhg_s: float = -375.0  # mean negative slope (-3 mmHg/sample at 125 Hz)
    max_variation_ratio: float = 1.6  # total variation / (2 x pulse pressure): one rise, one fall
    variation_hysteresis_fraction: float = 0.1  # moves smaller than this share of the pulse
    variation_hysteresis_mmhg: float = 1.0  # ... or than this are sensor noise, not legs
    clip_run_s: float = 0.1  # identical samples at the beat's extreme this long: a rail
    flush_plateau_s: float = 0.2  # flat top at least this long ...
    flush_min_mmhg: float = 150.0  # ... above this pressure: a fast flush
    damped_pulse_fraction: float = 0.4  # pulse pressure below this share of the recent one ...
    damped_map_fraction: float = 0.15  # ... while MAP stays within this share: damping
    reference_beats: float = 20.0  # time constant, in beats, of the recent pulse pressure and MAP


def _ring_capacity(n: int) -> int:
    """Smallest power of two holding ``n`` items, so a ring index is a bit mask."""
    capacity = 1
    while capacity < n:
        capacity *= 2
    return capacity


@dataclass(frozen=True)
class DetectorTiming:
    """The settings as sample counts at one sampling rate.

    Both implementations of the core take their constants from here, so
    they cannot round a window differently.
    """

    decimation: int  # raw samples per detection sample
    lowpass_len: int  # each of the two moving sums
    slope_len: int  # slope-sum window
    onset_delay: int  # detection samples from where the onset search lands to the foot
    half_eye: int  # peak search after a crossing; eye-closing is twice this
    learning_block: int  # detection samples per second of the learning period
    learning_blocks: int  # seconds of learning
    decay_after: int  # detection samples without a beat before the threshold falls
    decay_factor: float  # per detection sample, once falling
    level_len: int  # detection samples averaged to classify a no-pulse stretch
    max_beat: int  # raw samples: a longer interval is a pause, not a beat
    raw_capacity: int  # ring of raw samples (power of two)
    detection_capacity: int  # ring of detection samples (power of two)
    slope_capacity: int  # ring of slope-sum values (power of two)


def detector_timing(fs: float, settings: DetectorSettings) -> DetectorTiming:
    """Turn every time constant of ``settings`` into samples at ``fs``."""
    s = settings
    k = max(1, int(math.floor(fs / s.detection_rate_hz + 1e-9)))
    fd = fs / k
    half_eye = max(1, round(s.eye_closing_s * fd / 2))
    max_beat = int(math.ceil(s.no_pulse_s * fs))
    raw_capacity = _ring_capacity(max_beat + int(math.ceil(1.5 * fs)) + 2)
    return DetectorTiming(
        decimation=k,
        lowpass_len=max(1, round(s.lowpass_window_s * fd)),
        slope_len=max(1, round(s.slope_window_s * fd)),
        onset_delay=round(s.onset_delay_s * fd),
        half_eye=half_eye,
        learning_block=max(1, round(fd)),
        learning_blocks=max(1, round(s.learning_s)),
        decay_after=round(s.threshold_decay_after_s * fd),
        decay_factor=0.5 ** (1.0 / (s.threshold_half_life_s * fd)),
        level_len=max(1, round(2.0 * fd)),
        max_beat=max_beat,
        raw_capacity=raw_capacity,
        detection_capacity=_ring_capacity(raw_capacity // k + 2),
        slope_capacity=_ring_capacity(3 * half_eye + 4),
    )
