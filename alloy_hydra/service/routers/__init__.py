"""One router per concern: health, models, design, predict."""
