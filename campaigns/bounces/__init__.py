"""Bounces without an ESP: VERP return paths come back to a mailbox, read and applied here."""
