"""Alarm conditions become alarms, in the spirit of IEC 60601-1-8.

The manager knows nothing about blood pressure: each moment it is told
which conditions hold, and it applies the behaviour the standard describes:

* a condition must hold for its **delay** before the alarm is raised;
* a **high**-priority alarm **latches**: it stays shown after its cause
  ends, until someone acknowledges it;
* **acknowledge** silences an alarm for as long as its condition lasts
  (and clears a latched one); **audio pause** silences everything for a
  bounded time, then the sound comes back; a new alarm of higher priority
  than any sounding when the pause began breaks through;
* a **medium**-priority alarm left unacknowledged **escalates** to high;
* an information signal (priority ``INFO``) is shown, never sounded;
* an alarm standing when the monitor stopped is **carried** into the next
  run: when its condition holds again (within the resume window, with no
  new delay) it is **resumed** as the same alarm, with its identity and
  priority, annunciated again but not raised anew; a latched one is resumed
  at once; one whose condition is not found again by the window's end is
  resumed latched if it latches, else cleared, so nothing stands that no
  one can see.

Every change is an ``AlarmTransition`` for the log; ``annunciation()`` is
what the sinks render. All times are stream time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from monitor.clinical.alarm_types import (
    ActiveAlarm,
    AlarmTransition,
    Annunciation,
    CarriedAlarm,
    Category,
    Priority,
    Transition,
)


@dataclass(frozen=True)
class AlarmSpec:
    name: str
    priority: Priority
    category: Category
    delay_s: float = 0.0

    @property
    def latching(self) -> bool:
        return self.priority is Priority.HIGH and self.category is Category.PHYSIOLOGICAL


#: An alarm's words, or a function that gives them when they are first read: a standing
#: condition is re-stated at every evaluation, and its words are read only for a change
#: or a display. The function must give the same words whenever it is called.
Words = str | Callable[[], str]


@dataclass(frozen=True)
class Condition:
    """Whether an alarm condition holds now, and the words and evidence if it does."""

    active: bool
    message: Words = ""
    evidence: Mapping[str, Any] = field(default_factory=dict)


INACTIVE = Condition(False)


@dataclass
class _Alarm:
    spec: AlarmSpec
    priority: Priority
    pending_since: float | None = None  # condition active, delay running
    raised_s: float | None = None  # shown since
    condition_active: bool = False
    acknowledged: bool = False
    words: Words = ""
    evidence: Mapping[str, Any] = field(default_factory=dict)
    alarm_id: str = ""  # of the raised alarm, or of the carried one awaiting its condition
    carried: CarriedAlarm | None = None  # from before a restart, not yet found again
    carried_until_s: float = 0.0


class AlarmManager:
    """Conditions in (``update``), operator actions in, transitions and annunciation out."""

    def __init__(self, specs: Mapping[str, AlarmSpec], audio_pause_s: float, escalation_s: float):
        self.audio_pause_s = audio_pause_s
        self.escalation_s = escalation_s
        self._alarms = {name: _Alarm(spec, spec.priority) for name, spec in specs.items()}
        self._pause_until: float | None = None
        self._pause_priority: Priority | None = None  # highest sounding when the pause began
        self.id_prefix = ""  # makes alarm ids unique beyond this run (the bedside sets it)
        self._raised_count = 0

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._alarms)

    def spec(self, name: str) -> AlarmSpec:
        return self._alarms[name].spec

    def is_raised(self, name: str) -> bool:
        return self._alarms[name].raised_s is not None

    def apply_settings(
        self, specs: Mapping[str, AlarmSpec], audio_pause_s: float, escalation_s: float
    ) -> None:
        """A reload's new delays, priorities and times, applied to the running alarms.

        Every running timer keeps its start and is measured against the new
        time at the next update: a pending condition whose shortened delay has
        already passed is raised then, a lengthened one waits longer. A raised
        alarm keeps the priority it is shown with (a reload never quietens a
        standing alarm); its new priority applies from its next raise.
        """
        self.audio_pause_s = audio_pause_s
        self.escalation_s = escalation_s
        for name, a in self._alarms.items():
            a.spec = specs[name]
            if a.raised_s is None:
                a.priority = a.spec.priority

    # ------------------------------------------------------------ deadlines
    def next_deadline(self) -> float | None:
        """The next moment something changes with no new input: a delay, pause or escalation."""
        times = []
        for a in self._alarms.values():
            if a.raised_s is None:
                if a.pending_since is not None:
                    times.append(a.pending_since + a.spec.delay_s)
            elif (escalation_s := self._escalation_s(a)) is not None:
                times.append(escalation_s)
            if a.carried is not None:
                times.append(a.carried_until_s)
        if self._pause_until is not None:
            times.append(self._pause_until)
        return min(times, default=None)

    def _escalation_s(self, a: _Alarm) -> float | None:
        """When a raised, unacknowledged MEDIUM alarm becomes HIGH; None for any other."""
        if a.raised_s is None or a.priority is not Priority.MEDIUM or a.acknowledged:
            return None
        return a.raised_s + self.escalation_s

    # --------------------------------------------------------------- update
    def update(self, t_s: float, conditions: Mapping[str, Condition]) -> list[AlarmTransition]:
        """Apply the conditions holding at ``t_s`` (names not given are inactive)."""
        out: list[AlarmTransition] = []
        for name, a in self._alarms.items():
            if not (
                name in conditions
                or a.condition_active
                or a.raised_s is not None
                or a.carried is not None
            ):
                continue  # quiet and staying quiet: most alarms, most of the time
            c = conditions.get(name, INACTIVE)
            if c.active:
                a.words, a.evidence = c.message, c.evidence
                if not a.condition_active:
                    a.condition_active = True
                    if a.raised_s is None:
                        a.pending_since = t_s
                pending_since = a.pending_since
                due = pending_since is not None and t_s >= pending_since + a.spec.delay_s
                if a.raised_s is None and a.carried is not None:
                    out.append(self._resume(t_s, a))
                elif a.raised_s is None and due:
                    a.raised_s, a.pending_since = t_s, None
                    a.acknowledged = False
                    self._raised_count += 1
                    a.alarm_id = f"{self.id_prefix}{self._raised_count}"
                    out.append(self._transition(t_s, a, Transition.RAISED))
            elif a.condition_active:
                a.condition_active = False
                a.pending_since = None
                if a.raised_s is not None:
                    if a.spec.latching and not a.acknowledged:
                        out.append(self._transition(t_s, a, Transition.CONDITION_ENDED))
                    else:
                        out += self._clear(t_s, a)
            if (escalation_s := self._escalation_s(a)) is not None and t_s >= escalation_s:
                a.priority = Priority.HIGH
                out.append(self._transition(t_s, a, Transition.ESCALATED))
            if a.carried is not None and t_s >= a.carried_until_s:
                if a.spec.latching:  # its cause ended unseen: it latches, as it would have
                    out.append(self._resume(t_s, a))
                else:
                    out.append(self._drop_carried(t_s, a, "its condition was not found again"))
        out += self._update_pause(t_s, out)
        return out

    # ------------------------------------------------------------ restarts
    def carry(
        self, t_s: float, carried: Iterable[CarriedAlarm], window_s: float
    ) -> list[AlarmTransition]:
        """Alarms standing when the previous run ended: each waits ``window_s`` for its condition.

        A latched alarm (its cause had ended, no one acknowledged it) is
        resumed at once: the latch is what it shows. One whose name is
        already raised in this run (a log that opened late) is cleared: the
        alarm of this run stands in its place; so is one of an earlier patient.
        """
        out: list[AlarmTransition] = []
        for c in carried:
            a = self._alarms.get(c.name)
            if a is None:
                continue  # an alarm this version no longer has
            a.carried, a.carried_until_s = c, t_s + window_s
            if c.earlier_patient:
                out.append(self._drop_carried(t_s, a, "a new admission began"))
            elif a.raised_s is not None:
                out.append(self._drop_carried(t_s, a, f"alarm {a.alarm_id} of this run stands"))
            elif not c.condition_active and a.spec.latching:
                a.words = c.message
                out.append(self._resume(t_s, a))
        return out

    def _resume(self, t_s: float, a: _Alarm) -> AlarmTransition:
        c = a.carried
        assert c is not None
        a.carried, a.pending_since = None, None
        a.raised_s, a.acknowledged = t_s, False
        a.alarm_id, a.priority = c.alarm_id, max(a.priority, c.priority)
        return self._transition(
            t_s, a, Transition.RESUMED,
            {"raised_utc": c.raised_utc, "condition_active": a.condition_active},
        )  # fmt: skip

    def _drop_carried(self, t_s: float, a: _Alarm, why: str) -> AlarmTransition:
        """The carried alarm ends, under its own identity, without ever being shown here."""
        c = a.carried
        assert c is not None
        a.carried = None
        return AlarmTransition(
            t_s, c.name, c.priority, a.spec.category, Transition.CLEARED,
            f"{c.message} (cleared after the restart: {why})",
            {"raised_utc": c.raised_utc}, c.alarm_id,
        )  # fmt: skip

    def _update_pause(self, t_s: float, new: list[AlarmTransition]) -> list[AlarmTransition]:
        if self._pause_until is None:
            return []
        raised_above = any(
            tr.transition in (Transition.RAISED, Transition.RESUMED, Transition.ESCALATED)
            and tr.priority > (self._pause_priority or Priority.INFO)
            for tr in new
        )
        if t_s < self._pause_until and not raised_above:
            return []
        self._pause_until = self._pause_priority = None
        return [
            self._transition(t_s, a, Transition.AUDIO_RESUMED)
            for a in self._alarms.values()
            if self._would_sound(a)
        ]

    # ------------------------------------------------------ operator actions
    def acknowledge(self, t_s: float, name: str | None = None) -> list[AlarmTransition]:
        """Acknowledge one alarm, or every unacknowledged one."""
        out: list[AlarmTransition] = []
        for a in self._alarms.values():
            if a.raised_s is None or a.acknowledged or (name is not None and a.spec.name != name):
                continue
            a.acknowledged = True
            out.append(self._transition(t_s, a, Transition.ACKNOWLEDGED))
            if not a.condition_active:
                out += self._clear(t_s, a)
        return out

    def pause_audio(self, t_s: float) -> list[AlarmTransition]:
        """Silence every alarm for the audio-pause time; they sound again if still there."""
        sounding = [a for a in self._alarms.values() if self._would_sound(a)]
        self._pause_until = t_s + self.audio_pause_s
        self._pause_priority = max((a.priority for a in sounding), default=Priority.INFO)
        return [
            self._transition(t_s, a, Transition.AUDIO_PAUSED, {"until_s": self._pause_until})
            for a in sounding
        ]

    # ---------------------------------------------------------------- output
    def annunciation(self, t_s: float) -> Annunciation:
        shown = sorted(
            ((a, raised_s) for a in self._alarms.values() if (raised_s := a.raised_s) is not None),
            key=lambda shown_alarm: (-shown_alarm[0].priority, shown_alarm[1]),
        )
        paused = self._pause_until is not None
        audible = max(
            (a.priority for a, _ in shown if self._would_sound(a) and not paused), default=None
        )
        return Annunciation(
            t_s,
            tuple(
                ActiveAlarm(
                    a.spec.name,
                    a.priority,
                    a.spec.category,
                    _message(a),
                    raised_s,
                    a.condition_active,
                    a.acknowledged,
                    paused and self._would_sound(a),
                )
                for a, raised_s in shown
            ),
            audible,
        )

    def _would_sound(self, a: _Alarm) -> bool:
        return a.raised_s is not None and not a.acknowledged and a.priority > Priority.INFO

    def _clear(self, t_s: float, a: _Alarm) -> list[AlarmTransition]:
        tr = self._transition(t_s, a, Transition.CLEARED)
        a.raised_s = None
        a.acknowledged = False
        a.priority = a.spec.priority
        a.alarm_id = ""
        return [tr]

    def _transition(
        self,
        t_s: float,
        a: _Alarm,
        transition: Transition,
        extra: Mapping[str, Any] | None = None,
    ) -> AlarmTransition:
        evidence = dict(a.evidence)
        if extra:
            evidence.update(extra)
        return AlarmTransition(
            t_s,
            a.spec.name,
            a.priority,
            a.spec.category,
            transition,
            _message(a),
            evidence,
            a.alarm_id,
        )


def _message(a: _Alarm) -> str:
    """The alarm's words, worked out at most once."""
    if not isinstance(a.words, str):
        a.words = a.words()
    return a.words
