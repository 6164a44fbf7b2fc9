"""The command line, ``python -m lmc <verb>``: one verb per workflow step."""
