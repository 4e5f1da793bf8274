"""The unit's default configuration and drug table, installed as ``monitor.defaults``."""
