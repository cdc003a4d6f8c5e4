"""The scoring stage: comparison levels, the Fellegi-Sunter model, its training and scoring."""
