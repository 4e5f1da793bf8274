"""What no single setting's bounds can see: contradictions between settings and the files they name.

Each value is checked against its own bounds as it is read
(``config.py``); this module checks the configuration as a whole, as it
will run, with every layer merged (bedside adjustments included, since they
can move the MAP target): settings that contradict one another, a port read
twice, a drug table that cannot be loaded, network settings that cannot
work. ``monitor config check``, ``config set``, the start of ``monitor run``
and a reload on SIGHUP all refuse on the same list.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from monitor.configuration.config import Config, ConfigProblem
from monitor.configuration.device_ports import port_problems
from monitor.configuration.drug_names import drug_name_problems
from monitor.configuration.drug_table import DrugTableError, load_drug_table
from monitor.configuration.network_settings import network_problems


@dataclass(frozen=True)
class Relation:
    """``lower`` (times ``lower_scale``) must stay below ``upper`` (times ``upper_scale``)."""

    lower: str
    upper: str
    why: str
    lower_scale: float = 1.0
    upper_scale: float = 1.0
    or_equal: bool = False  # True: equal is allowed too

    def holds(self, config: Config) -> bool:
        low = config.number(self.lower) * self.lower_scale
        high = config.number(self.upper) * self.upper_scale
        return low <= high if self.or_equal else low < high


#: The pairs config/bounds.toml's comments promise; each says why it matters at the bed.
RELATIONS = (
    Relation(
        "alarms.map_critical_mmhg", "detector.map_target_mmhg",
        "a critically low MAP must be below the target, or the critical alarm would sound "
        "while the patient is on target",
    ),
    Relation(
        "alarms.map_critical_delay_s", "alarms.hypotension_delay_s",
        "a critically low MAP must never wait longer than a merely low one",
        or_equal=True,
    ),
    Relation(
        "detector.refractory_sustain_min", "detector.hydrocortisone_advisory_h",
        "refractoriness must be confirmed before the hydrocortisone point it precedes",
        upper_scale=60.0, or_equal=True,
    ),
    Relation(
        "detector.state_hysteresis_mmhg", "detector.episode_end_margin_mmhg",
        "an episode must not count as recovered at a MAP that still reads hypotensive",
        or_equal=True,
    ),
    Relation(
        "detector.episode_bridge_min", "detector.episode_end_min",
        "a rise shorter than the bridge keeps a pending episode, so a confirmed one must "
        "not end on a shorter recovery",
        or_equal=True,
    ),
    Relation(
        "detector.hydrocortisone_advisory_h", "log.resume_lookback_h",
        "a restart rebuilds the detector from the look-back: it must reach past the "
        "hydrocortisone point, or that clock starts again at every reboot",
    ),
    Relation(
        "log.trend_interval_s", "hl7.observation_interval_s",
        "an HL7 observation reports a trend point: at most one per trend point",
        or_equal=True,
    ),
)  # fmt: skip


def relation_problems(config: Config) -> list[ConfigProblem]:
    """Every relation the merged configuration breaks, named at the key that was set last."""
    problems = []
    for relation in RELATIONS:
        if relation.holds(config):
            continue
        # Name the one set in a file (not a default): that is the one to look at.
        key, other = (
            (relation.lower, relation.upper)
            if config.source(relation.lower) != "packaged defaults"
            else (relation.upper, relation.lower)
        )
        relation_word = "at most" if relation.or_equal else "below"
        problems.append(
            ConfigProblem(
                config.source(key), key,
                f"{relation.lower} = {config[relation.lower]!r} must be {relation_word} "
                f"{relation.upper} = {config[relation.upper]!r}"
                + (f" (x{relation.upper_scale:g})" if relation.upper_scale != 1.0 else "")
                + f" (from {config.source(other)}): {relation.why}",
            )
        )  # fmt: skip
    return problems


def drug_table_problems(config: Config) -> list[ConfigProblem]:
    """The drug table the configuration names, loaded as ``monitor run`` loads it, and the
    drug-library names mapped to its drugs."""
    path = config.text("drugs.table").strip() or None
    try:
        table = load_drug_table(path)
    except DrugTableError as exc:
        return [ConfigProblem(config.source("drugs.table"), "drugs.table", str(exc))]
    return drug_name_problems(config, table)


CHECKS: tuple[Callable[[Config], list[ConfigProblem]], ...] = (
    relation_problems,
    port_problems,
    drug_table_problems,
    network_problems,
)


def configuration_problems(config: Config) -> list[ConfigProblem]:
    """Everything wrong with a merged configuration beyond each value's own bounds."""
    return [problem for check in CHECKS for problem in check(config)]
