from lmc.cli.main import run

run()
