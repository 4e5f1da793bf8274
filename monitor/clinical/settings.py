"""The clinical layer's settings in the units its code uses (seconds, mmHg, ug/kg/min).

The configuration speaks the language of the people who set it (minutes,
hours); this is the one place that converts, so no rule multiplies by 60
on its own. The values, their bounds and the reasons for the defaults live
in ``config/monitor.toml`` and ``config/bounds.toml``.
"""

from __future__ import annotations

from dataclasses import dataclass

from monitor.clinical.alarm_types import Priority
from monitor.configuration.config import Config


@dataclass(frozen=True)
class DetectorSettings:
    map_target_mmhg: float
    nee_threshold: float  # ug/kg/min
    sustain_s: float
    map_window_s: float
    map_min_coverage: float
    hysteresis_mmhg: float
    bridge_s: float  # interruptions shorter than this do not reset an episode
    end_s: float  # recovery must hold this long to end an episode
    end_margin_mmhg: float
    advisory_s: float  # NEE above threshold this long: hydrocortisone advisory


@dataclass(frozen=True)
class AlarmSettings:
    hypotension_delay_s: float
    map_critical_mmhg: float
    map_critical_delay_s: float
    no_pulse_delay_s: float
    artifact_delay_s: float
    audio_pause_s: float
    escalation_s: float
    serial_error_limit_per_min: int
    priorities: dict[str, Priority]


@dataclass(frozen=True)
class ClinicalSettings:
    detector: DetectorSettings
    alarms: AlarmSettings
    paused_hold_s: float  # a paused pump channel's last dose is held this long

    @classmethod
    def from_config(cls, config: Config) -> ClinicalSettings:
        get = config.number

        detector = DetectorSettings(
            map_target_mmhg=get("detector.map_target_mmhg"),
            nee_threshold=get("detector.nee_threshold_ug_kg_min"),
            sustain_s=60.0 * get("detector.refractory_sustain_min"),
            map_window_s=get("detector.map_window_s"),
            map_min_coverage=get("detector.map_min_coverage"),
            hysteresis_mmhg=get("detector.state_hysteresis_mmhg"),
            bridge_s=60.0 * get("detector.episode_bridge_min"),
            end_s=60.0 * get("detector.episode_end_min"),
            end_margin_mmhg=get("detector.episode_end_margin_mmhg"),
            advisory_s=3600.0 * get("detector.hydrocortisone_advisory_h"),
        )
        alarms = AlarmSettings(
            hypotension_delay_s=get("alarms.hypotension_delay_s"),
            map_critical_mmhg=get("alarms.map_critical_mmhg"),
            map_critical_delay_s=get("alarms.map_critical_delay_s"),
            no_pulse_delay_s=get("alarms.no_pulse_delay_s"),
            artifact_delay_s=get("alarms.artifact_delay_s"),
            audio_pause_s=get("alarms.audio_pause_s"),
            escalation_s=60.0 * get("alarms.escalation_min"),
            serial_error_limit_per_min=config.integer("alarms.serial_error_limit_per_min"),
            priorities={
                name: Priority[str(value).upper()]
                for name, value in config.section("alarms.priority").items()
            },
        )
        return cls(detector, alarms, 60.0 * get("nee.paused_hold_min"))
