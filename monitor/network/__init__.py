"""Beyond one bed: what a bedside sends out (MQTT, HL7 v2) and the central station's connection.

Everything here reads the bedside's log and never the running engine: the
alarms and the log never wait on the network, and what the network missed
is still in the log to be sent later (docs/network.md). May import the log,
the clinical vocabulary and configuration; never the bedside, screens or
command line (the central station's screen is ``monitor.screens``).
"""
