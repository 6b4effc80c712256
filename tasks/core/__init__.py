"""The bottom layer: versions, cutpoints, statuses, errors, step value types and settings.

Every package of the project may import it; it imports none of them (``tests/test_layers.py``).
"""
