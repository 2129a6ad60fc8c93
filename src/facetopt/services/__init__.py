"""One module per subcommand: orchestration over clients and pure rules."""
