"""Alarm outputs: how an alarm is made known (terminal, sound, GPIO light, a command hook).

The alarm manager (``monitor.clinical.alarms``) decides; outputs only
render, each behind the ``AlarmSink`` contract and isolated by the fan-out,
so one that hangs or fails never delays another. May import
``monitor.clinical`` (the alarm vocabulary) and below; never the log,
network, bedside, screens or command line.
"""
