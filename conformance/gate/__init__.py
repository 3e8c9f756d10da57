"""Layer 8, the gate: records (verdicts, answers, the accuracy envelope) and speed, into one GateReport."""
