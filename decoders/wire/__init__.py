"""Bytes to records: capture files, link/network layers, demultiplexing and wire formats."""
