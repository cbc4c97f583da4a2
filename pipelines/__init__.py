"""Everything that moves data and runs: config, data, stages, tracking, runner, CLI."""
