"""The operator's command line, ``python -m ops`` (never runs in Lambda).

See docs/operating.md for the commands, their ``--json`` schemas and exit codes.
"""
