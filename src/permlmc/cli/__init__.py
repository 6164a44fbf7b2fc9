"""The command line, ``python -m permlmc <verb>``: one verb per workflow step."""
