from permlmc.cli.main import run

run()
