"""Pure metric functions (sklearn-style argument order: ``y_true`` first)."""
