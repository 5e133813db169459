"""Training: one solver per paradigm over library models; a plain loop; checkpoints. No Ray, no MLflow here."""
