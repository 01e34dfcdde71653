"""Monitor: judges new data against the serving model and says whether retraining is due."""
