-- An account's proxy URL ('' for the driver's default); sealed when
-- encryption at rest is on.
ALTER TABLE accounts ADD COLUMN proxy TEXT NOT NULL DEFAULT '';
