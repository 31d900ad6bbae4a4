"""Streams, decryption and decoding."""
