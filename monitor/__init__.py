"""Bedside monitor for refractory hypotension."""
