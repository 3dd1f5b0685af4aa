"""What a person runs: the `sync365` command and its subcommands. Nothing imports this package."""
