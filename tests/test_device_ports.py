"""A bed's devices port by port: ``[[ports.device]]`` beside the older ``[ports]`` keys.

What is refused (unknown protocol, a port twice, a baud rate a protocol
cannot use) is specified with the other broken files in
test_config_consistency.py; these are the ports a valid file gives.
"""

from __future__ import annotations

import pytest

from devices.protocols.bcc_pumps import BccPumpAdapter
from devices.protocols.registry import make_adapter
from monitor.bedside.live import Ports
from monitor.configuration.config import default_config
from monitor.configuration.device_ports import configured_ports

pytestmark = pytest.mark.usefixtures("packaged_config_only")


def config(**settings: object):
    return default_config().with_overrides(settings, "bed.toml")


RACK = {"role": "pumps", "path": "socket://10.1.2.3:4001", "protocol": "bcc"}


def test_the_older_keys_and_device_tables_make_one_list_the_transducer_first() -> None:
    ports = configured_ports(
        config(**{
            "ports.pumps": ["/dev/ttyUSB1"],
            "ports.device": [
                {"role": "transducer", "path": "/dev/ttyUSB0", "protocol": "binary"},
                RACK,
                {**RACK, "path": "/dev/ttyUSB2", "name": "left", "baud": 19200},
            ],
        })
    )  # fmt: skip
    assert ports.problems == ()
    assert [(p.name, p.protocol, p.path, p.baud, p.key) for p in ports.all()] == [
        ("transducer", "binary", "/dev/ttyUSB0", 115200, "ports.device[1]"),
        ("pump1", "pump-nmea-v2", "/dev/ttyUSB1", 9600, "ports.pumps"),
        ("pump2", "bcc", "socket://10.1.2.3:4001", 9600, "ports.device[2]"),
        ("left", "bcc", "/dev/ttyUSB2", 19200, "ports.device[3]"),
    ]
    assert all(p.source == "bed.toml" for p in ports.pumps if p.key != "ports.pumps")


def test_a_tcp_rack_takes_any_baud_rate_a_socket_has_none() -> None:
    assert configured_ports(config(**{"ports.device": [{**RACK, "baud": 4800}]})).problems == ()


def test_two_racks_number_their_pumps_alike_so_each_pump_carries_its_port_name() -> None:
    two = configured_ports(
        config(**{"ports.device": [{**RACK, "name": "left"}, {**RACK, "path": "/dev/ttyUSB2"}]})
    )
    assert [p.pump_id_prefix for p in two.pumps] == ["left:", "pump1:"]
    assert [
        p.pump_id_prefix for p in configured_ports(config(**{"ports.device": [RACK]})).pumps
    ] == [""]  # one rack: its pumps are named as the rack shows them
    adapter = make_adapter("bcc", "pumps", 250.0, pump_id_prefix="left:")
    assert isinstance(adapter, BccPumpAdapter) and adapter.pump_id_prefix == "left:"


def test_where_a_port_was_configured_is_not_what_the_port_is() -> None:
    by_key = configured_ports(config(**{"ports.pumps": ["/dev/ttyUSB1"]})).pumps[0]
    by_table = configured_ports(
        config(**{"ports.device": [{"role": "pumps", "path": "/dev/ttyUSB1",
                                    "protocol": "pump-nmea-v2"}]})
    ).pumps[0]  # fmt: skip
    assert by_key == by_table and by_key.key != by_table.key  # a reload reopens nothing


def test_a_v1_pump_port_by_table_is_warned_about_by_its_own_key() -> None:
    ports = Ports.from_config(
        config(**{
            "ports.transducer": "/dev/ttyUSB0",
            "ports.device": [{"role": "pumps", "path": "/dev/ttyUSB1", "protocol": "pump-nmea-v1"}],
        })
    )  # fmt: skip
    (warning,) = ports.warnings()
    assert warning.startswith("ports.device[1].protocol is v1 (in bed.toml): pump1's sentences")


def test_each_pump_port_gets_the_adapter_of_its_own_protocol() -> None:
    ports = Ports.from_config(
        config(**{"ports.transducer": "/dev/ttyUSB0", "ports.pumps": ["/dev/ttyUSB1"],
                  "ports.device": [RACK]})
    )  # fmt: skip
    assert [decoder.protocol for _, decoder in ports.pump_readers()] == ["pump-nmea-v2", "bcc"]
    assert [settings.role for settings in ports.all()] == ["transducer", "pump1", "pump2"]


def test_no_transducer_at_all_names_both_ways_to_configure_one() -> None:
    from monitor.bedside.live import StartupError

    with pytest.raises(StartupError, match=r"ports.transducer is empty .* \[\[ports.device\]\]"):
        Ports.from_config(config(**{"ports.device": [RACK]}))
