from lmc.cli import run

run()
