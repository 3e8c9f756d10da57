"""Layer 1, the model: the contract's names, the dtypes, the record and the verdict it carries, a record's identity,
the statuses and their one order. It imports nothing else of the package."""
