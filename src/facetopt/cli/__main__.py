from facetopt.cli.main import run

run()
