-- The simulator's groups: one row per group of the sim network, shared by
-- every sim account in it. doc is the JSON of sim.Group (members and
-- their roles, settings, invite code, pending join requests); the sim
-- reads every group at its first group call and rewrites a group's row
-- on each change. updated_at is unix milliseconds.
CREATE TABLE sim_groups (
	jid        TEXT    NOT NULL PRIMARY KEY,
	doc        TEXT    NOT NULL,
	updated_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
