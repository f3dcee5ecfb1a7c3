"""What a person reads: report.md with figures, and rank-agreement reports."""
