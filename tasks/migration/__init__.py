"""Async data migration for post_upgrade: key-ordered chunks, checkpoint in each chunk's transaction.

Pure parts (``spec``, ``sql``, ``throttle``, ``stats``) decide; I/O parts (``checkpoint``,
``copier``, ``probe``, ``verify``) talk to MariaDB; ``runner`` drives the loop.
"""
