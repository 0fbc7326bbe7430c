-- How many of a pull delivery's attempts ended in a nack (the others ran
-- out their lease), so that a dead letter says what happened.
ALTER TABLE retries ADD COLUMN nacks INTEGER NOT NULL DEFAULT 0;
