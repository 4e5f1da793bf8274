"""Device side of the wire: protocols, simulators, scenarios, replay."""
