"""The tests' own CRC-16/CCITT-FALSE, bit by bit, to check the product's (binascii) against."""

from __future__ import annotations


def crc16_ccitt_false(data: bytes) -> int:
    """Bit by bit from the catalogue definition: poly 0x1021, init 0xFFFF, no reflection."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021 if crc & 0x8000 else crc << 1) & 0xFFFF
    return crc
