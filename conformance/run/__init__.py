"""Layer 5, running: the library the command line calls (api), the runner of one shard, the process pool and its
shard costs and balance, results files and the output folder, the environment, repro commands, `check` of a user's
function."""
