"""Fetch stage: HTTP with fair access, EDGAR and press-release sources, offline replay."""
